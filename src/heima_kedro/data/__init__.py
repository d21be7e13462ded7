"""The study's data, free of models: the four-stage answer format and its compression, LLaVA-CoT
conversations and their drop rules, images, thinking-token settings, the decoders' chat samples
and ShapesCoT, the embedded default data set."""

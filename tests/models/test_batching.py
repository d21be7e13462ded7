import torch

from heima_kedro.models.batching import (
    IGNORE_INDEX,
    collate,
    encode_decoder_sample,
    encode_encoder_sample,
    encoder_prompt,
    encoder_sample_length,
)


def _encoded(processor, shapes_pairs, n=3):
    return [
        encode_encoder_sample(processor=processor, image=image, question=question, answer=answer)
        for image, question, answer in shapes_pairs[:n]
    ]


def test_exactly_the_answer_and_eos_are_labelled(processor, tokenizer, shapes_pairs):
    image, question, answer = shapes_pairs[0]
    sample = encode_encoder_sample(
        processor=processor, image=image, question=question, answer=answer
    )
    labelled = sample["labels"] != IGNORE_INDEX
    answer_ids = tokenizer(answer, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
    assert sample["labels"][labelled].tolist() == answer_ids
    # the labelled tokens are one run at the end, and they are the input tokens themselves
    n_prompt = len(sample["input_ids"]) - len(answer_ids)
    assert not labelled[:n_prompt].any() and labelled[n_prompt:].all()
    assert torch.equal(sample["input_ids"][labelled], sample["labels"][labelled])
    assert tokenizer.decode(sample["input_ids"][labelled], skip_special_tokens=True) == answer


def test_training_prompt_is_the_generation_prompt(processor, shapes_pairs):
    image, question, answer = shapes_pairs[0]
    sample = encode_encoder_sample(
        processor=processor, image=image, question=question, answer=answer
    )
    prompt = encoder_prompt(processor=processor, question=question)
    assert "<image>" not in prompt and prompt.count("<|image|>") == 1
    served = processor(
        images=[[image]], text=[prompt], add_special_tokens=False, return_tensors="pt"
    )
    n_prompt = int((sample["labels"] == IGNORE_INDEX).sum())
    assert sample["input_ids"][:n_prompt].tolist() == served["input_ids"][0].tolist()
    assert torch.equal(sample["pixel_values"], served["pixel_values"])


def test_collate_pads_right_and_masks_cross_attention_like_the_processor(processor, shapes_pairs):
    samples = _encoded(processor, shapes_pairs)
    batch = collate(samples, pad_token_id=processor.tokenizer.pad_token_id)
    lengths = [len(s["input_ids"]) for s in samples]
    assert batch["input_ids"].shape == (3, max(lengths))
    for row, (sample, n) in enumerate(zip(samples, lengths, strict=True)):
        assert torch.equal(batch["input_ids"][row, :n], sample["input_ids"])
        assert (batch["input_ids"][row, n:] == processor.tokenizer.pad_token_id).all()
        assert (batch["labels"][row, n:] == IGNORE_INDEX).all()
        assert batch["attention_mask"][row].tolist() == [1] * n + [0] * (max(lengths) - n)
        image, question, answer = shapes_pairs[row]
        prompt = encoder_prompt(processor=processor, question=question)
        served = processor(
            images=[[image]], text=[prompt + answer], add_special_tokens=False, return_tensors="pt"
        )
        m = served["cross_attention_mask"].shape[1]
        assert torch.equal(
            batch["cross_attention_mask"][row, :m], served["cross_attention_mask"][0]
        )
    assert batch["pixel_values"].shape[0] == 3


def test_a_collated_batch_trains_the_encoder(encoder, processor, shapes_pairs):
    batch = collate(
        _encoded(processor, shapes_pairs), pad_token_id=processor.tokenizer.pad_token_id
    )
    loss = encoder(**batch).loss
    loss.backward()
    assert torch.isfinite(loss)
    assert encoder.model.vision_model.patch_embedding.weight.grad.abs().sum() > 0


def test_decoder_samples_label_only_the_assistant_turn(tokenizer, decoder):
    user = "Question: how many? Hidden summary: <THINKING_OF_SUMMARY> Write it out."
    sample = encode_decoder_sample(
        tokenizer=tokenizer, user=user, assistant=" I count the shapes. "
    )
    labelled = sample["labels"][sample["labels"] != IGNORE_INDEX].tolist()
    assert labelled == tokenizer("I count the shapes.", add_special_tokens=False).input_ids + [
        tokenizer.eos_token_id
    ]
    other = encode_decoder_sample(tokenizer=tokenizer, user="hi", assistant="yes")
    batch = collate([sample, other], pad_token_id=tokenizer.pad_token_id)
    assert "cross_attention_mask" not in batch
    assert torch.isfinite(decoder(**batch).loss)


def test_max_length_truncates_the_answer_not_the_prompt(processor, shapes_pairs):
    image, question, answer = shapes_pairs[0]
    full = encode_encoder_sample(processor=processor, image=image, question=question, answer=answer)
    n_prompt = int((full["labels"] == IGNORE_INDEX).sum())
    short = encode_encoder_sample(
        processor=processor, image=image, question=question, answer=answer, max_length=n_prompt + 5
    )
    assert torch.equal(short["input_ids"], full["input_ids"][: n_prompt + 5])
    assert int((short["labels"] != IGNORE_INDEX).sum()) == 5


def test_text_only_length_is_the_encoded_length(processor, shapes_pairs):
    for max_length in (2048, 40):  # 40 truncates the answer
        for image, question, answer in shapes_pairs[:3]:
            encoded = encode_encoder_sample(
                processor=processor,
                image=image,
                question=question,
                answer=answer,
                max_length=max_length,
            )
            length = encoder_sample_length(
                processor=processor, question=question, answer=answer, max_length=max_length
            )
            assert length == len(encoded["input_ids"])

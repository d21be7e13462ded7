"""A stage's configuration: validated before anything trains, each bad value named, and the same
after a round trip through a launched rank's files."""

import json
from pathlib import Path

import pandas as pd
import pytest

from heima_kedro.models.factory import build_tiny_encoder
from heima_kedro.models.launch import LaunchConfig, launch_command
from heima_kedro.training.stages import RANK_MODULE, StageConfig, _checkpoint
from heima_kedro.training.trainables import EncoderTrainable

ZERO_3 = Path(__file__).resolve().parents[2] / "conf/accelerate/deepspeed_zero3.yaml"
STAGE = {
    "target": "compress_all",
    "max_length": 64,
    "checkpoint": {"every": 5},
    "train": {"lr": 1e-3, "max_steps": 3, "betas": [0.9, 0.99], "clip": None},
}


def test_a_stage_survives_the_round_trip_to_a_launched_rank():
    stage = StageConfig.from_params(STAGE)
    again = StageConfig.from_params(json.loads(json.dumps(stage.to_params())))
    assert again == stage
    assert (
        stage.train.betas == (0.9, 0.99)
        and stage.train.clip is None
        and stage.checkpoint.every == 5
    )
    assert not stage.launch.launches


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"targett": "x"}, r"unknown stage parameters \['targett'\]"),
        ({"max_length": 0}, "max_length must be an integer >= 1"),
        ({"target": ""}, "target must name"),
        ({"checkpoint": {"every": 0}}, "checkpoint.every must be an integer >= 1"),
        ({"train": {"lr": -1}}, "train.lr must be > 0"),
        ({"launch": {"num_processes": 0}}, "launch.num_processes"),
        ({"launch": {"config_file": "/nowhere.yaml"}}, "launch.config_file not found"),
        ({"launch": {"template": "srun {launch}"}}, "launch.template must hold"),
        ({"launch": {"template": "srun {launch} {rank} {nodes}"}}, "launch.template must hold"),
    ],
)
def test_bad_stage_parameters_are_named(change, message):
    with pytest.raises(ValueError, match=message):
        StageConfig.from_params({**STAGE, **change})


def test_a_missing_stage_parameter_is_named():
    with pytest.raises(ValueError, match=r"stage parameters \['train'\] are missing"):
        StageConfig.from_params({"target": "x", "max_length": 3})


def test_checkpoint_null_trains_without_checkpoints():
    assert StageConfig.from_params({**STAGE, "checkpoint": None}).checkpoint is None


def test_launch_takes_the_process_count_from_the_config_file_unless_given(tmp_path):
    config_file = tmp_path / "fsdp.yaml"
    config_file.write_text("distributed_type: FSDP\nnum_processes: 8\n")
    from_file = LaunchConfig(config_file=str(config_file))
    assert from_file.launches
    command = launch_command(module=RANK_MODULE, run_dir=tmp_path, config=from_file)
    assert "--num_processes" not in command  # it would override the file's 8
    assert command[command.index("--config_file") + 1] == str(config_file)
    assert command[-3:] == ["heima_kedro.training.rank", "--run-dir", str(tmp_path)]
    given = launch_command(
        module=RANK_MODULE,
        run_dir=tmp_path,
        config=LaunchConfig(num_processes=2, config_file=str(config_file)),
    )
    assert given[given.index("--num_processes") + 1] == "2"
    ddp = launch_command(module=RANK_MODULE, run_dir=tmp_path, config=LaunchConfig(num_processes=2))
    assert "--multi_gpu" in ddp and "--config_file" not in ddp
    assert not LaunchConfig().launches and not LaunchConfig(num_processes=1).launches


def test_a_cluster_template_wraps_the_launch_and_several_machines_keep_their_port(tmp_path):
    config_file = tmp_path / "fsdp_2_nodes.yaml"
    config_file.write_text("num_machines: 2\nnum_processes: 16\nmain_process_port: 29500\n")
    config = LaunchConfig(
        config_file=str(config_file),
        template="srun --nodes=2 bash -c '{launch} --machine_rank $SLURM_NODEID {rank}'",
    )
    assert config.launches and config.processes == 16
    shell, flag, script = launch_command(module=RANK_MODULE, run_dir=tmp_path, config=config)
    assert (shell, flag) == ("bash", "-c")
    assert script.startswith("srun --nodes=2 bash -c '") and "$SLURM_NODEID" in script
    launch, rank = script.split(" --machine_rank $SLURM_NODEID ")
    assert "--main_process_port" not in launch  # the file's 29500, the same on every machine
    assert launch.endswith(f"--config_file {config_file}")
    assert rank == f"-m heima_kedro.training.rank --run-dir {tmp_path}'"


def test_encoding_settings_do_not_stop_a_resume(tmp_path, tokenizer, encoder_config, processor):
    """A run killed with one data-loader setting resumes with another (same fingerprint)."""

    pairs = pd.DataFrame({"pair_id": [0], "image": ["a"], "question": ["q"], "compress_all": ["t"]})
    trainable = EncoderTrainable(
        model=build_tiny_encoder(config=encoder_config, tokenizer=tokenizer),
        processor=processor,
        images={},
    )

    def fingerprint(launch=None, **train):
        stage = StageConfig.from_params(
            {
                "target": "compress_all",
                "max_length": 64,
                "train": {"max_steps": 2, **train},
                "checkpoint": {"every": 1},
                "launch": launch or {},
            }
        )
        return _checkpoint(
            trainable=trainable, pairs=pairs, stage=stage, checkpoints=tmp_path
        ).fingerprint

    assert fingerprint() == fingerprint(num_workers=2, cache_samples=True)
    assert fingerprint() != fingerprint(seed=7)
    # Gathered (DDP, FSDP) state resumes on any number of processes; ZeRO's partitions do not.
    assert fingerprint() == fingerprint({"num_processes": 2})
    zero_3 = {"config_file": str(ZERO_3)}
    assert fingerprint(zero_3) != fingerprint({**zero_3, "num_processes": 4})

"""Planning a WSD run's decay from its measured speed (mdlm/training/wsd.py), and the property it relies on: a
resumed transformers WSD scheduler follows a new max_steps / num_decay_steps."""

import json
import os

import pytest
import torch
from transformers import TrainerCallback, get_scheduler

from mdlm.training.wsd import latest_checkpoint, main, measured_tokens_per_s, plan_decay


def test_the_plan_fits_the_seconds_at_the_measured_speed():
    plan = plan_decay(1000, tokens_per_s=100_000, seconds=300, tokens_per_step=10_000, safety=1.0)
    assert (plan.start_step, plan.num_decay_steps, plan.max_steps) == (1000, 3000, 4000)  # 10 steps/s × 300 s


def test_evaluations_take_their_share_of_the_time():
    # 10 steps/s; an evaluation of 10 s every 100 steps: 100 steps cost 20 s, so 300 s hold 1,500 steps
    plan = plan_decay(0, 100_000, 300, 10_000, eval_steps=100, eval_seconds=10, safety=1.0)
    assert plan.num_decay_steps == 1500
    assert plan_decay(0, 100_000, 300, 10_000, safety=0.9).num_decay_steps == 2700


@pytest.mark.parametrize("kw", [dict(tokens_per_s=0), dict(seconds=0), dict(tokens_per_step=0), dict(seconds=0.01)])
def test_impossible_plans_are_refused(kw):
    args = dict(start_step=0, tokens_per_s=1000.0, seconds=100.0, tokens_per_step=1000) | kw
    with pytest.raises(ValueError):
        plan_decay(**args)


def test_speed_is_the_mean_of_recent_non_warmup_intervals():
    hist = [{"tokens_per_s": 1.0, "warmup": True}, {"loss": 3.0}] + [{"tokens_per_s": float(v)} for v in range(10, 17)]
    assert measured_tokens_per_s(hist, last=5) == pytest.approx(14.0)  # 12..16
    with pytest.raises(ValueError, match="tokens_per_s"):
        measured_tokens_per_s([{"loss": 1.0}, {"tokens_per_s": 5.0, "warmup": True}])


def _lrs(sched, opt, steps):
    out = []
    for _ in range(steps):
        opt.step()
        sched.step()
        out.append(sched.get_last_lr()[0])
    return out


def test_a_resumed_wsd_scheduler_follows_the_new_length():
    """What the decay stage relies on: the Trainer re-creates the scheduler from the new arguments and loads the saved
    state, which carries the step count but not the schedule's length."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    first = get_scheduler("warmup_stable_decay", opt, num_warmup_steps=5, num_training_steps=1000,
                          scheduler_specific_kwargs={"num_decay_steps": 300})
    lrs = _lrs(first, opt, 30)
    assert lrs[-1] == pytest.approx(1.0)  # stable
    state = first.state_dict()

    opt2 = torch.optim.SGD([p], lr=1.0)
    second = get_scheduler("warmup_stable_decay", opt2, num_warmup_steps=5, num_training_steps=50,
                           scheduler_specific_kwargs={"num_decay_steps": 20, "decay_type": "cosine"})
    second.load_state_dict(state)
    lrs = _lrs(second, opt2, 20)  # steps 31..50
    assert lrs[0] < 1.0 and lrs == sorted(lrs, reverse=True)
    assert lrs[-1] == pytest.approx(0.0, abs=1e-9)


def _checkpoint(run, step, speeds):
    d = os.path.join(run, f"checkpoint-{step}")
    os.makedirs(d)
    with open(os.path.join(d, "trainer_state.json"), "w") as f:
        json.dump({"global_step": step, "log_history": [{"tokens_per_s": s} for s in speeds]}, f)


def test_cli_plans_from_the_newest_checkpoint(tmp_path, capsys):
    _checkpoint(tmp_path, 90, [1.0])
    _checkpoint(tmp_path, 1200, [20_000.0, 20_000.0])
    os.makedirs(tmp_path / "checkpoint-5000")  # no trainer_state.json: not a usable checkpoint
    assert latest_checkpoint(str(tmp_path)).endswith("checkpoint-1200")
    assert main([str(tmp_path), "--seconds", "100", "--tokens-per-step", "1000", "--safety", "1"]) == 0
    assert capsys.readouterr().out.startswith("max_steps 3200 num_decay_steps 2000 (from step 1200")


def test_cli_without_a_checkpoint_is_one_error_line(tmp_path, capsys):
    assert main([str(tmp_path), "--seconds", "100", "--tokens-per-step", "1000"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: no checkpoint-N")


class _Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Linear(4, 1)

    def forward(self, x, y):
        return {"loss": ((self.w(x).squeeze(-1) - y) ** 2).mean()}


class _StopAt(TrainerCallback):
    """Stops training at ``step`` with a checkpoint, as TimeBudget(save_checkpoint=True) does on its budget."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kw):
        if state.global_step == self.step:
            control.should_training_stop = control.should_save = True
        return control


def _trainer(out, max_steps, decay, callbacks=()):
    from transformers import Trainer, TrainingArguments

    data = [{"x": torch.randn(4, generator=torch.Generator().manual_seed(i)), "y": torch.tensor(1.0)} for i in range(64)]
    args = TrainingArguments(out, max_steps=max_steps, per_device_train_batch_size=4, learning_rate=0.1,
                             lr_scheduler_type="warmup_stable_decay", warmup_steps=2,
                             lr_scheduler_kwargs={"num_decay_steps": decay}, logging_steps=1, save_strategy="steps",
                             save_steps=10_000, report_to="none", use_cpu=True, disable_tqdm=True,
                             dataloader_num_workers=0)
    torch.manual_seed(0)
    return Trainer(model=_Tiny(), args=args, train_dataset=data, callbacks=list(callbacks))


def test_a_trainer_resumed_with_a_new_length_decays_to_its_new_end(tmp_path):
    """The decay stage's path end to end: a stable-phase launch stops at step 6 with a checkpoint; the resumed launch
    gets max_steps 14 and num_decay_steps 6 and ends its decay there."""
    first = _trainer(str(tmp_path), max_steps=1000, decay=300, callbacks=[_StopAt(6)])
    first.train()
    assert first.state.global_step == 6 and os.path.isdir(tmp_path / "checkpoint-6")
    lr_first = [h["learning_rate"] for h in first.state.log_history if "learning_rate" in h]
    assert lr_first[-1] == pytest.approx(0.1)  # stable

    second = _trainer(str(tmp_path), max_steps=14, decay=6)
    second.train(resume_from_checkpoint=str(tmp_path / "checkpoint-6"))
    assert second.state.global_step == 14
    lrs = {h["step"]: h["learning_rate"] for h in second.state.log_history if "learning_rate" in h}
    # stable until step 8 = 14 - 6; a log at step s shows the rate step s used (the schedule's value at s - 1)
    assert lrs[8] == pytest.approx(0.1) and lrs[9] == pytest.approx(0.1)
    decay = [lrs[s] for s in range(10, 15)]
    assert decay == sorted(decay, reverse=True) and decay[0] < 0.1 and decay[-1] < 0.01


def test_cli_names_a_file_that_is_not_a_trainer_state(tmp_path, capsys):
    d = tmp_path / "checkpoint-3"
    d.mkdir()
    (d / "trainer_state.json").write_text('{"log_history": []}')
    assert main([str(tmp_path), "--seconds", "100", "--tokens-per-step", "1000"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "trainer_state.json is not a Trainer state" in err[0]

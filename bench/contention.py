"""Training under load: a LoRA step with every core busy with other work, against the same step idle.

    python bench/contention.py [--steps 24] [--seconds 240]

Runs the same short training (the bench/train.py facts, the default model, TrainConfig's defaults) in
child processes, one scenario after the other:

1. idle: nothing else runs;
2. burners, BLAS threads = cores: one CPU-bound burner per core (bounded in time), and the BLAS told to
   use every core, as before slowwave chose thread counts;
3. burners, auto: the same burners, `[model] threads = 0` (the cores other work leaves free);
4. two trainings at once, auto: two of these trainings start together (two tenants' sleeps).

Prints the median step time of each (steps after the first epoch: compilation is left out), its ratio to
idle, the threads each chose, and the load average. Target: at most 2.5x idle for 3 and 4.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHILD = r"""
import json, sys, time
from tasks.model.blas import ensure_fast_blas
ensure_fast_blas()
from tasks.model import threads
setting, steps = int(sys.argv[1]), int(sys.argv[2])
threads.configure(setting)
from bench.train import FACTS, default_model
from tasks.model.loading import load_model
from tasks.training import TrainConfig, train_adapter
model, tok = load_model(default_model(), fresh=True)
rows = [{"question": q, "answer": a} for q, a in FACTS]
epochs = max(2, -(-steps // len(rows)))
result = train_adapter(model, tok, rows, TrainConfig(light_epochs=epochs))
step_s = result.steps.column("seconds").to_pylist()[len(rows):]
print(json.dumps({"step_s": step_s, "threads": threads.last_choice().threads,
                  "reason": threads.last_choice().reason}))
"""

BURNER = "import time\nend = time.time() + float(__import__('sys').argv[1])\nwhile time.time() < end: pass\n"


def train(setting: int, steps: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", CHILD, str(setting), str(steps)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def result(proc: subprocess.Popen, timeout: float) -> dict:
    out, err = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise SystemExit(f"contention: a training child failed ({proc.returncode}):\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])


def burners(n: int, seconds: float) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", BURNER, str(seconds)]) for _ in range(n)]


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.kill()
        p.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=24, help="training steps per run (whole epochs of 12 examples)")
    ap.add_argument("--seconds", type=float, default=240, help="longest a burner may run")
    args = ap.parse_args()
    from tasks.model.threads import usable_cores

    cores = usable_cores()
    print(f"{cores} core(s); load average {os.getloadavg()[0]:.2f} before the first scenario")
    rows = []

    def scenario(name: str, setting: int, n_burners: int, n_trainings: int = 1) -> None:
        hot = burners(n_burners, args.seconds)
        try:
            time.sleep(1.0 if hot else 0)  # let the burners be runnable before the child chooses its threads
            tic = time.perf_counter()
            procs = [train(setting, args.steps) for _ in range(n_trainings)]
            outs = [result(p, args.seconds * 4) for p in procs]
            wall = time.perf_counter() - tic
        finally:
            stop(hot)
        for i, out in enumerate(outs):
            median = statistics.median(out["step_s"])
            rows.append({"scenario": name + (f" #{i + 1}" if n_trainings > 1 else ""), "median_step_s": median,
                         "threads": out["threads"], "reason": out["reason"], "wall_s": wall,
                         "load": os.getloadavg()[0]})
            print(f"{rows[-1]['scenario']:34} median step {median:6.3f} s  threads {out['threads']} "
                  f"({out['reason']})  wall {wall:5.1f} s  load {rows[-1]['load']:.2f}", flush=True)

    scenario("idle (auto)", 0, 0)
    scenario(f"{cores} burner(s), threads = {cores}", cores, cores)
    scenario(f"{cores} burner(s), auto", 0, cores)
    scenario("two trainings at once, auto", 0, 0, n_trainings=2)
    idle = rows[0]["median_step_s"]
    print("\nratio to idle (target <= 2.5 for auto under load):")
    for r in rows[1:]:
        print(f"  {r['scenario']:34} {r['median_step_s'] / idle:5.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

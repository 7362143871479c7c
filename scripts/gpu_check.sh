#!/usr/bin/env bash
# GPU check: one command, under 8 minutes on one GPU, no network.
#
#   scripts/gpu_check.sh [--dry-run] [--out DIR]
#
# Runs, each in its own process under its own `timeout` (one failure or hang costs at most its
# own budget and is marked in the table, the others still run):
#   twins     scripts/bench_twins.py at N = 4096, 16384, 65536, 131072 (--layout scan with remat
#             chunks of 4 steps, the memory-lean step; 3 timed steps):
#             individual-steps/s and the device's peak memory (the host's peak RSS on a CPU)
#   main      python -m twinjax data.n_individuals = 16384, 65536 (train.steps and
#             train.personal_steps = $MAIN_STEPS, default 100): wall seconds and its phase
#             timings (metrics.json "timings": data, prepare, population fit, personal fit,
#             calibration, save, evaluation, validation, skill table, report)
#   abm       scripts/bench_abm.py --engines twinjax at 10^6 and 10^7 agents (plain epidemic)
#   agents    scripts/bench_twin_agents.py at 10^6 and 10^7 agents (twin-driven, carried state)
#   federated scripts/bench_federated.py at 1,000 and 10,000 clients (its population mode when
#             the script has one: Poisson sampling, one epoch; twinjax only)
#   processes scripts/bench_processes.py at N = 16384: the population fit on one process per
#             GPU (2 processes sharing the GPU where there is one; 2 CPU processes in the dry
#             run) against one process, and the largest difference of their parameters
#   lstm_xla, lstm_pallas  scripts/bench_twins.py --layout sequence at N = 4096 and 16384 with
#             --kernel xla (lstm_sequence's scan) and --kernel pallas (the fused Pallas forward
#             kernel of twins/fused.py, never compiled for a GPU before this check: a FAIL row
#             is its first verification). Last, so they run within the budget only when the
#             rows above leave time (BUDGET=600 gives them room).
# and prints one table, one row per measurement:
#   check      size       status  seconds  result
#   twins      N=4096     ok         41.2  1.0e+05 individual-steps/s, peak 2.1 GB
#   main       N=16384    ok         95.0  wall 95.0 s; data 3.1, population fit 20.3, ...
#   abm        N=1000000  ok          8.2  4.1e+09 agent-steps/s
#   ...
#   federated  N=10000    TIMEOUT    60.0  -
# status is ok, FAIL (rc N), TIMEOUT, or SKIPPED when the whole check's budget ($BUDGET, default
# 450 s: 7.5 minutes) is spent (each sub-run's timeout is cut to what is left); the logs and JSON of every sub-run are in the output
# folder (default: outputs/gpu_check-<date>), with the table as table.txt.
#
# --dry-run: tiny sizes (a few individuals, agents and clients, two training steps) that run
# on a CPU in a few seconds each beyond their start-ups (six processes); tests/test_gpu_check.py
# runs it (marked slow: the start-ups alone take longer than a unit test may). Every row must
# then be ok.
#
# Packages missing from a plain CUDA JAX image (hydra-core, omegaconf, antlr4, dp-accounting,
# dm-tree) are installed without network from the wheels in $WHEELS (default: .whl, then
# ../shared/wheels-gpu) into a temporary folder put on PYTHONPATH, when hydra is missing.
set -u
cd "$(dirname "$0")/.."
DRY=0
OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --out) OUT="$2"; shift ;;
    *) echo "usage: $0 [--dry-run] [--out DIR]" >&2; exit 2 ;;
  esac
  shift
done
OUT=${OUT:-outputs/gpu_check-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if ! "$PYTHON" -c "import hydra, omegaconf" 2>/dev/null; then
  for w in "${WHEELS:-}" .whl ../shared/wheels-gpu; do
    if [ -n "$w" ] && ls "$w"/*.whl >/dev/null 2>&1; then
      site=$(mktemp -d)
      "$PYTHON" -m pip install -q --no-index --no-deps --target "$site" "$w"/*.whl
      export PYTHONPATH="$site:$PYTHONPATH"
      echo "installed the wheels of $w into $site"
      break
    fi
  done
fi

if [ "$DRY" = 1 ]; then
  export JAX_PLATFORMS=${JAX_PLATFORMS:-cpu}
  TWINS_N="8"; TWINS_ARGS="--windows 2 --length 8 --repeats 1"; KERNEL_N="8"
  MAIN_N="6"; MAIN_STEPS=2
  MAIN_ARGS="data.n_steps=60 data.context=6 data.horizon=3 model.hidden=4 model.attention_dim=4"
  MAIN_ARGS="$MAIN_ARGS train.batch_windows=2 experiment.n_plot_individuals=1"
  ABM_N="1000"; ABM_STEPS=5
  AGENTS_N="64"; AGENTS_ARGS="--steps 2 --window-steps 1 --window 4 --hidden 4 --repeats 1"
  FED_N="20"; FED_ARGS="--epochs 1 --rounds 2 --max-samples 50"
  PROC_N="8"; PROC_ARGS="--steps 2 --length 60"; T_PROC=600
  T_TWINS=600; T_MAIN=600; T_ABM=600; T_AGENTS=600; T_FED=600; BUDGET=${BUDGET:-2700}  # loaded CIs
else
  TWINS_N="4096 16384 65536 131072"; TWINS_ARGS="--repeats 3"; KERNEL_N="4096 16384"
  MAIN_N="16384 65536"; MAIN_STEPS=${MAIN_STEPS:-100}; MAIN_ARGS=""
  ABM_N="1000000 10000000"; ABM_STEPS=100
  AGENTS_N="1000000 10000000"; AGENTS_ARGS="--steps 50 --window-steps 2 --repeats 2"
  FED_N="1000 10000"; FED_ARGS="--epochs 1 --rounds 10 --max-samples 500"
  PROC_N="16384"; PROC_ARGS="--steps 20 --length 240"; T_PROC=90
  T_TWINS=40; T_MAIN=${T_MAIN:-150}; T_ABM=25; T_AGENTS=40; T_FED=45; BUDGET=${BUDGET:-450}
fi
if "$PYTHON" scripts/bench_federated.py --help 2>/dev/null | grep -q -- "--spread"; then
  FED_ARGS="$FED_ARGS --sampling poisson --spread 0.5"  # the population mode
fi

STATUS="$OUT/status.tsv"
: > "$STATUS"
DEADLINE=$(( $(date +%s) + BUDGET ))
# run NAME SIZE TIMEOUT COMMAND...: one sub-run, its log in $OUT/NAME-SIZE.log; its timeout is
# cut to what is left of the whole check's $BUDGET seconds (none left: SKIPPED)
run() {
  local name=$1 size=$2 limit=$3
  shift 3
  local start rc left=$(( DEADLINE - $(date +%s) ))
  [ "$left" -lt "$limit" ] && limit=$left
  if [ "$limit" -lt 5 ]; then
    printf '%s\t%s\tskip\t0\n' "$name" "$size" >> "$STATUS"
    return
  fi
  start=$(date +%s%N)
  timeout --kill-after=5 "$limit" "$@" > "$OUT/$name-$size.log" 2>&1
  rc=$?
  printf '%s\t%s\t%s\t%s\n' "$name" "$size" "$rc" "$(( ($(date +%s%N) - start) / 1000000 ))" \
    >> "$STATUS"
  echo "$name N=$size: rc $rc" >&2
}

for n in $TWINS_N; do  # one process per N: its own timeout and its own peak memory
  # shellcheck disable=SC2086
  run twins "$n" "$T_TWINS" "$PYTHON" - "$n" "$OUT/twins-$n.json" $TWINS_ARGS \
    --layout scan --remat-chunk 4 <<'EOF'
import importlib.util, json, resource, sys
import jax
n, path, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
spec = importlib.util.spec_from_file_location("bench_twins", "scripts/bench_twins.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)
out = bench.main(["--n", n, *extra])
stats = jax.devices()[0].memory_stats() or {}
peak = stats.get("peak_bytes_in_use") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
out["peak_bytes"], out["peak_of"] = peak, "device" if stats else "host RSS"
json.dump(out, open(path, "w"), default=str)
EOF
done
for n in $MAIN_N; do
  # shellcheck disable=SC2086
  run main "$n" "$T_MAIN" "$PYTHON" -m twinjax seed=0 data.n_individuals="$n" \
    train.steps="$MAIN_STEPS" train.personal_steps="$MAIN_STEPS" train.progress=false \
    hydra.run.dir="$OUT/main-$n" $MAIN_ARGS
done
for n in $ABM_N; do
  run abm "$n" "$T_ABM" "$PYTHON" scripts/bench_abm.py --engines twinjax --n "$n" \
    --steps "$ABM_STEPS" --json "$OUT/abm-$n.json"
done
for n in $AGENTS_N; do
  # shellcheck disable=SC2086
  run agents "$n" "$T_AGENTS" "$PYTHON" scripts/bench_twin_agents.py --n "$n" $AGENTS_ARGS \
    --json "$OUT/agents-$n.json"
done
for n in $FED_N; do
  # shellcheck disable=SC2086
  run federated "$n" "$T_FED" "$PYTHON" scripts/bench_federated.py --clients "$n" \
    --peer none --buckets 8 $FED_ARGS --json "$OUT/federated-$n.json"
done
GPUS=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ')
for n in $PROC_N; do
  # shellcheck disable=SC2086
  run processes "$n" "$T_PROC" "$PYTHON" scripts/bench_processes.py --n "$n" \
    --processes "$(( GPUS > 2 ? GPUS : 2 ))" $PROC_ARGS
done
for n in $KERNEL_N; do
  for kernel in xla pallas; do
    # shellcheck disable=SC2086
    run "lstm_$kernel" "$n" "$T_TWINS" "$PYTHON" scripts/bench_twins.py --n "$n" \
      --layout sequence --kernel "$kernel" $TWINS_ARGS --json "$OUT/lstm_$kernel-$n.json"
  done
done

"$PYTHON" - "$OUT" <<'EOF' | tee "$OUT/table.txt"
import json, sys
from pathlib import Path

out = Path(sys.argv[1])


def twins(n):
    run = json.loads((out / f"twins-{n}.json").read_text())
    tj = run["runs"][0]["twinjax"]
    return (f"{tj['individual_steps_per_s']:.3g} individual-steps/s, peak "
            f"{run['peak_bytes'] / 1e9:.2f} GB ({run['peak_of']})")


def _lstm(kernel, n):
    tj = json.loads((out / f"lstm_{kernel}-{n}.json").read_text())["runs"][0]["twinjax"]
    return (f"{tj['individual_steps_per_s']:.3g} individual-steps/s "
            f"(first call {tj['first_call_with_compile_s']:.1f} s)")


lstm_xla = lambda n: _lstm("xla", n)
lstm_pallas = lambda n: _lstm("pallas", n)


def main(n):
    m = json.loads((out / f"main-{n}" / "metrics.json").read_text())
    t = m["timings"]
    phases = ", ".join(f"{k} {v:.1f}" for k, v in t.items())
    return (f"{sum(t.values()):.1f} s in phases: {phases}; RMSE ratio "
            f"{m['rmse_ratio_personalized_over_population']:.3f}")


def abm(n):
    r = json.loads((out / f"abm-{n}.json").read_text())["twinjax"]
    return f"{r['agent_steps_per_s']:.3g} agent-steps/s"


def agents(n):
    rows = json.loads((out / f"agents-{n}.json").read_text())["rows"]
    return ", ".join(f"{r['mode']} {r['agent_steps_per_s']:.3g}" for r in rows) + " agent-steps/s"


def federated(n):
    rows = json.loads((out / f"federated-{n}.json").read_text())
    return ", ".join(f"{r['twinjax_rounds_per_s']:.3g}" for r in rows) + " rounds/s"


def processes(n):
    r = json.loads((out / f"processes-{n}.log").read_text().strip().splitlines()[-1])
    return (f"{r['processes']} processes ({r['devices']}) {r['seconds_processes']:.1f} s, one "
            f"{r['seconds_one']:.1f} s; parameters differ by {r['max_param_difference']:.1e}")


print(f"{'check':11s} {'size':12s} {'status':8s} {'seconds':>8s}  result")
for line in (out / "status.tsv").read_text().splitlines():
    name, size, rc, seconds = line.split("\t")
    status = {"0": "ok", "124": "TIMEOUT", "137": "TIMEOUT", "skip": "SKIPPED"}.get(
        rc, f"FAIL(rc {rc})")
    result = "-"
    if rc == "0":
        try:
            result = globals()[name](size)
        except (OSError, KeyError, IndexError, ValueError) as e:
            status, result = "FAIL", f"no result ({type(e).__name__}: {e})"
    print(f"{name:11s} {'N=' + size:12s} {status:8s} {int(seconds) / 1e3:8.1f}  {result}")
EOF

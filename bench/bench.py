#!/usr/bin/env python3
"""unroot's benchmarks: each figure against the naive way, measured in the same run.

    python3 bench/bench.py            # all five
    python3 bench/bench.py day ready  # some of: day, reown, plan, overhead, ready

Needs the Docker daemon, the fixture images (tests/fixtures/build-images.sh builds them) and
a release build (made here). Everything it creates carries the label io.unroot.bench and is
removed at the end. Figures are wall-clock seconds on this machine; ratios are unroot's time
divided by the naive way's.

  day       a day of 8 services (1,000 files each, health check every 1 s): `unroot apply`
            vs a shell script doing the same with the docker CLI one service at a time
            (stop, chown -R in a helper, rm, run --user, poll health every second).
  reown     re-owning a volume of 200,000 files: unroot's chown step (host walk and helper
            container) vs `docker run ... chown -R`; a first pass, and a second pass with
            nothing to change.
  plan      `unroot check` and `unroot graph` on a generated plan of 10,000 services, with
            peak memory.
  overhead  a day of 8 services run one at a time: wall time minus the time spent waiting
            on Docker (unroot's own count: every API call and every wait on the events
            stream, which includes the health checks and the stability windows). What is
            left is unroot's own work: parsing, journal fsyncs, diffing, process start.
  ready     the realistic case: 3 days of 2 services whose health checks run every 10 s
            (and, in a second round, every 30 s), half of them handling SIGTERM and half
            needing the full stop grace; `unroot apply` of each day in turn vs the docker-CLI
            procedure (stop, chown -R in a helper, rm, run --user, poll health every second),
            and against the critical path computed from the plan's days and waves and each
            service's measured stop and ready times plus stable_for: how close unroot is to
            its own limit, and where the rest of the time goes.
"""

import atexit
import datetime
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UNROOT = ROOT / "target" / "release" / "unroot"
RUN_ID = f"b{os.getpid()}"
LABEL = f"io.unroot.bench={RUN_ID}"


def sh(cmd, check=True, **kw):
    out = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check and out.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} exited {out.returncode}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return out


def docker(*args):
    return sh(["docker", *args]).stdout.strip()


def cleanup():
    ids = docker("ps", "-aq", "--filter", f"label={LABEL}").split()
    ids += docker("ps", "-aq", "--filter", f"name={RUN_ID}").split()
    if ids:
        sh(["docker", "rm", "-f", *sorted(set(ids))], check=False)
    for v in docker("volume", "ls", "-q", "--filter", f"label={LABEL}").split():
        sh(["docker", "volume", "rm", v], check=False)


def images():
    out = sh(["bash", str(ROOT / "tests/fixtures/build-images.sh")]).stdout
    return dict(line.split("=", 1) for line in out.split())


def timed(cmd, **kw):
    start = time.monotonic()
    out = sh(cmd, **kw)
    return time.monotonic() - start, out


def ts(text):
    # RFC 3339 with nanoseconds; Python keeps microseconds.
    date, frac = text.rstrip("Z").split(".") if "." in text else (text.rstrip("Z"), "0")
    return datetime.datetime.fromisoformat(f"{date}.{frac[:6].ljust(6, '0')}+00:00").timestamp()


def step_seconds(state, step):
    """Seconds between the start and end records of `step`, summed over services."""
    total = 0.0
    for journal in Path(state).glob("*/runs/*/journal.jsonl"):
        starts = {}
        for line in journal.read_text().splitlines():
            r = json.loads(line)
            if r.get("record") == "step" and r.get("step") == step:
                if "ok" not in r:
                    starts[r["service"]] = ts(r["ts"])
                elif r["service"] in starts:
                    total += ts(r["ts"]) - starts.pop(r["service"])
    return total


def make_services(prefix, n, files, busybox, health=True):
    names = []
    for i in range(n):
        name, vol = f"{RUN_ID}-{prefix}-{i}", f"{RUN_ID}-{prefix}-{i}-data"
        docker("volume", "create", "--label", LABEL, vol)
        docker("run", "--rm", "--label", LABEL, "-v", f"{vol}:/d", busybox, "sh", "-c",
               f"cd /d && seq 1 {files} | xargs touch")
        args = ["run", "-d", "--init", "--name", name, "--label", LABEL, "-v", f"{vol}:/data"]
        if health:
            args += ["--health-cmd", "test -d /data", "--health-interval", "1s"]
        docker(*args, busybox, "sleep", "1000000")
        names.append(name)
    if health:
        deadline = time.monotonic() + 60
        while any(docker("inspect", "-f", "{{.State.Health.Status}}", n) != "healthy" for n in names):
            assert time.monotonic() < deadline, "fixtures never became healthy"
            time.sleep(0.5)
    return names


def write_plan(dir, names, user, extra=""):
    text = f'[rollout]\nname = "bench"\nstable_for = "1s"\nstop_timeout = "10s"\n{extra}\n'
    for n in names:
        text += f'[service.{n}]\nday = 1\nuser = "{user}"\n'
    path = Path(dir) / "plan.toml"
    path.write_text(text)
    return path


def unroot_apply(plan, state, *extra):
    secs, out = timed([str(UNROOT), "apply", str(plan), "--day", "1", "--yes", "--json",
                       "--state-dir", str(state), *extra])
    done = json.loads(out.stdout.strip().splitlines()[-1])
    assert done["exit_code"] == 0, out.stdout + out.stderr
    return secs, done


NAIVE_DAY = r"""
set -e
for c in "$@"; do
  vol=$(docker inspect -f '{{range .Mounts}}{{.Name}}{{end}}' "$c")
  docker stop -t 10 "$c" >/dev/null
  docker run --rm -v "$vol:/data" "$IMAGE" chown -R 1000:1000 /data
  docker rm "$c" >/dev/null
  docker run -d --init --name "$c" --label "$LABEL" --user 1000:1000 -v "$vol:/data" \
    --health-cmd 'test -d /data' --health-interval 1s "$IMAGE" sleep 1000000 >/dev/null
  until [ "$(docker inspect -f '{{.State.Health.Status}}' "$c")" = healthy ]; do sleep 1; done
done
"""


def bench_day(img):
    busybox = img["busybox"]
    with tempfile.TemporaryDirectory() as tmp:
        ours = make_services("day-u", 8, 1000, busybox)
        plan = write_plan(tmp, ours, "1000:1000", "parallelism = 8")
        t_unroot, _ = unroot_apply(plan, Path(tmp) / "state")
        naive = make_services("day-n", 8, 1000, busybox)
        t_naive, _ = timed(["bash", "-c", NAIVE_DAY, "naive", *naive],
                           env={**os.environ, "IMAGE": busybox, "LABEL": LABEL})
    return [("a. day of 8 services", t_unroot, t_naive, "<= 0.5")]


def bench_overhead(img):
    busybox = img["busybox"]
    with tempfile.TemporaryDirectory() as tmp:
        names = make_services("ovh", 8, 1000, busybox)
        plan = write_plan(tmp, names, "1000:1000", "parallelism = 1")
        wall, done = unroot_apply(plan, Path(tmp) / "state")
        api = done["docker_api_seconds"]
    return wall, api, wall - api


def bench_reown(img):
    busybox = img["busybox"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        vol = f"{RUN_ID}-reown"
        docker("volume", "create", "--label", LABEL, vol)
        docker("run", "--rm", "--label", LABEL, "-v", f"{vol}:/d", busybox, "sh", "-c",
               "cd /d && for i in $(seq 1 200); do mkdir $i && (cd $i && seq 1 1000 | xargs touch); done")

        def chown_r(owner):
            return timed(["docker", "run", "--rm", "--label", LABEL, "-v", f"{vol}:/d", busybox,
                          "chown", "-R", owner, "/d"])[0]

        def unroot_chown(mode, n):
            name = f"{RUN_ID}-reown-{mode}-{n}"
            docker("run", "-d", "--init", "--name", name, "--label", LABEL, "-v", f"{vol}:/data",
                   busybox, "sleep", "1000000")
            d = Path(tmp) / f"{mode}-{n}"
            d.mkdir()
            plan = write_plan(d, [name], "1000:1000", f'ownership = "{mode}"')
            unroot_apply(plan, d / "state")
            secs = step_seconds(d / "state", "chown")
            docker("rm", "-f", name)
            return secs

        results = {}
        for mode in ("naive", "host", "helper"):
            chown_r("0:0")  # everything to change
            results[(mode, 1)] = chown_r("1000:1000") if mode == "naive" else unroot_chown(mode, 1)
            # Second pass: the volume is owned by the target already.
            results[(mode, 2)] = chown_r("1000:1000") if mode == "naive" else unroot_chown(mode, 2)
        for p, target_1, target_2 in ((1, "<= 1.3", None), (2, None, "<= 0.2")):
            label = "first pass" if p == 1 else "second pass, nothing to change"
            target = target_1 or target_2
            for mode in ("host", "helper"):
                rows.append((f"b. re-own 200,000 files, {label}, {mode}", results[(mode, p)],
                             results[("naive", p)], target))
    return rows


def bench_plan():
    rng = random.Random(7)
    lines = ['[rollout]\nname = "big"\n']
    per_day = {}
    for i in range(10_000):
        day = 1 + i * 10 // 10_000
        same = per_day.setdefault(day, [])
        after = sorted({f"s{j}" for j in rng.sample(same, min(2, len(same)))}) if same and rng.random() < 0.5 else []
        lines.append(f'[service.s{i}]\nday = {day}\nuser = "1000:1000"\nafter = {json.dumps(after)}\n')
        same.append(i)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        plan = Path(tmp) / "big.toml"
        plan.write_text("".join(lines))
        for cmd in (["check", str(plan)], ["graph", str(plan)]):
            best, peak = None, 0
            for _ in range(5):
                start = time.monotonic()
                p = subprocess.Popen([str(UNROOT), *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                _, status, usage = os.wait4(p.pid, 0)
                secs = time.monotonic() - start
                assert os.waitstatus_to_exitcode(status) == 0, p.stderr.read()
                best = secs if best is None else min(best, secs)
                peak = max(peak, usage.ru_maxrss)
            rows.append((f"c. unroot {cmd[0]}, 10,000 services", best, peak))
    return rows


# A service that exits on SIGTERM (tini forwards it to sleep), and one that ignores it, so
# that only the stop grace's SIGKILL ends it.
QUICK = ["--init", "BUSYBOX", "sleep", "1000000"]
STUBBORN = ["BUSYBOX", "sh", "-c", "trap '' TERM; while :; do sleep 1; done"]
READY_GRACE = 3
READY_STABLE = 3


def make_ready_services(prefix, interval, busybox):
    """Three days of two services: one quick to stop and one that needs the grace each."""
    names = []
    for day in (1, 2, 3):
        for i, shape in enumerate((QUICK, STUBBORN)):
            name, vol = f"{RUN_ID}-{prefix}-d{day}-{i}", f"{RUN_ID}-{prefix}-d{day}-{i}-data"
            docker("volume", "create", "--label", LABEL, vol)
            docker("run", "--rm", "--label", LABEL, "-v", f"{vol}:/d", busybox, "sh", "-c", "cd /d && seq 1 200 | xargs touch")
            args = [a.replace("BUSYBOX", busybox) for a in shape]
            docker("run", "-d", "--name", name, "--label", LABEL, "-v", f"{vol}:/data", "--health-cmd", "test -d /data",
                   "--health-interval", f"{interval}s", *args)
            names.append((day, name, shape))
    deadline = time.monotonic() + 2 * interval + 60
    while any(docker("inspect", "-f", "{{.State.Health.Status}}", n) != "healthy" for _, n, _ in names):
        assert time.monotonic() < deadline, "fixtures never became healthy"
        time.sleep(0.5)
    return names


NAIVE_READY = r"""
set -e
for c in "$@"; do
  vol=$(docker inspect -f '{{range .Mounts}}{{.Name}}{{end}}' "$c")
  cmd=$(docker inspect -f '{{json .Config.Cmd}}' "$c")
  init=$(docker inspect -f '{{.HostConfig.Init}}' "$c")
  docker stop -t "$GRACE" "$c" >/dev/null
  docker run --rm -v "$vol:/data" "$IMAGE" chown -R 1000:1000 /data
  docker rm "$c" >/dev/null
  if [ "$init" = true ]; then
    docker run -d --init --name "$c" --label "$LABEL" --user 1000:1000 -v "$vol:/data" \
      --health-cmd 'test -d /data' --health-interval "${INTERVAL}s" "$IMAGE" sleep 1000000 >/dev/null
  else
    docker run -d --name "$c" --label "$LABEL" --user 1000:1000 -v "$vol:/data" \
      --health-cmd 'test -d /data' --health-interval "${INTERVAL}s" "$IMAGE" \
      sh -c "trap '' TERM; while :; do sleep 1; done" >/dev/null
  fi
  until [ "$(docker inspect -f '{{.State.Health.Status}}' "$c")" = healthy ]; do sleep 1; done
done
"""


def journal_steps(state):
    """Per service: seconds of each step (start to end record), and the health record's
    `after_ms` (start to the first passing probe)."""
    out = {}
    for journal in Path(state).glob("*/runs/*/journal.jsonl"):
        starts = {}
        for line in journal.read_text().splitlines():
            r = json.loads(line)
            if r.get("record") != "step":
                continue
            key = (r["service"], r["step"])
            if "ok" not in r:
                starts[key] = ts(r["ts"])
            elif key in starts:
                svc = out.setdefault(r["service"], {})
                svc[r["step"]] = ts(r["ts"]) - starts.pop(key)
                if r["step"] == "health" and isinstance(r.get("detail"), dict):
                    svc["ready"] = r["detail"].get("after_ms", 0) / 1000
                    svc["passed"] = r["detail"].get("passed")
    return out


def bench_ready(img, interval):
    busybox = img["busybox"]
    with tempfile.TemporaryDirectory() as tmp:
        ours = make_ready_services(f"r{interval}u", interval, busybox)
        text = (f'[rollout]\nname = "bench"\nstable_for = "{READY_STABLE}s"\nstop_timeout = "{READY_GRACE}s"\n'
                f'parallelism = 2\n')
        for day, name, _ in ours:
            text += f'[service.{name}]\nday = {day}\nuser = "1000:1000"\n'
        plan = Path(tmp) / "plan.toml"
        plan.write_text(text)
        state = Path(tmp) / "state"
        # Where the time between two days goes besides the services: the process start and
        # the preview (each measured on its own, outside the timed days).
        t_process = min(timed([str(UNROOT), "--version"])[0] for _ in range(5))
        t_preview = timed([str(UNROOT), "plan", str(plan), "--day", "1", "--state-dir", str(state)])[0]
        start = time.monotonic()
        for day in (1, 2, 3):
            done = json.loads(sh([str(UNROOT), "apply", str(plan), "--day", str(day), "--yes", "--json",
                                  "--state-dir", str(state)]).stdout.strip().splitlines()[-1])
            assert done["exit_code"] == 0, done
        t_unroot = time.monotonic() - start
        steps = journal_steps(state)
        # The critical path: days one after another; in a day, both services at once (one
        # wave, parallelism 2), each needing its stop, its readiness and stable_for.
        critical = 0.0
        for day in (1, 2, 3):
            critical += max(steps[n]["stop"] + steps[n]["ready"] + READY_STABLE for d, n, _ in ours if d == day)
        in_steps = sum(sum(v for k, v in svc.items() if k in ("inspect", "stop", "rename", "chown", "create", "health", "commit"))
                       for svc in steps.values())
        passed = sorted({svc.get("passed") for svc in steps.values()})
        naive = make_ready_services(f"r{interval}n", interval, busybox)
        t_naive, _ = timed(["bash", "-c", NAIVE_READY, "naive", *[n for _, n, _ in naive]],
                           env={**os.environ, "IMAGE": busybox, "LABEL": LABEL, "GRACE": str(READY_GRACE),
                                "INTERVAL": str(interval)})
    row = (f"e. 3 days x 2 services, health every {interval} s, stable_for {READY_STABLE} s", t_unroot, t_naive, "<= 0.5")
    note = (f"e. {interval} s checks: unroot {t_unroot:.2f} s, critical path {critical:.2f} s "
            f"(ratio {t_unroot / critical:.2f}, target <= 1.15); passed by {', '.join(p or '?' for p in passed)}; "
            f"time in steps (all services) {in_steps:.2f} s; per day: process start {t_process * 1000:.0f} ms, "
            f"preview {t_preview:.2f} s")
    return row, note


def main(which):
    print("building the release binary …", file=sys.stderr)
    sh(["cargo", "build", "--release", "--quiet"], cwd=ROOT)
    img = images()
    atexit.register(cleanup)
    ratios, notes = [], []
    if "day" in which:
        ratios += bench_day(img)
    if "reown" in which:
        ratios += bench_reown(img)
    if "plan" in which:
        for name, secs, peak in bench_plan():
            notes.append(f"{name:<52} {secs * 1000:8.1f} ms   peak {peak / 1024:6.1f} MiB   target < 200 ms")
    for interval in (10, 30):
        if "ready" in which:
            row, note = bench_ready(img, interval)
            ratios.append(row)
            notes.append(note)
    if "overhead" in which:
        wall, api, own = bench_overhead(img)
        notes.append(f"d. orchestration overhead, 8 services one at a time: wall {wall:.2f} s, waiting on Docker "
                     f"{api:.2f} s, unroot's own {own:.2f} s = {own / wall * 100:.1f}% (target <= 10%)")
    print(f"{'benchmark':<62} {'unroot':>8} {'naive':>8} {'ratio':>7}  target")
    for name, ours, naive, target in ratios:
        print(f"{name:<62} {ours:7.2f}s {naive:7.2f}s {ours / naive:7.2f}  {target}")
    for n in notes:
        print(n)


if __name__ == "__main__":
    main(sys.argv[1:] or ["day", "reown", "plan", "overhead", "ready"])

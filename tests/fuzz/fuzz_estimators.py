"""Fuzz every estimator's public methods with generated cases (issue 13); run by hand, not by the test suite.

    python tests/fuzz/fuzz_estimators.py --cases 10000            # 10,000 cases for each of the seventeen estimators
    python tests/fuzz/fuzz_estimators.py --cases 200 --only sparse

Cases come from ``cases.py`` (case i of an estimator is generated from seed i, so a failure is reproduced by its
number). They run in worker processes; a worker that dies (a crash of the interpreter) is reported with the case it
was running, and a new worker goes on after it. A case that runs longer than ``--timeout`` seconds counts as a hang.
At the end: per estimator the cases run, fitted, refused with a documented exception, failed (an undocumented
exception, a changed model after a failed fit, a non-finite fit, a wrong result), crashed and hung; the exit status
is 1 if any failed, crashed or hung.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
#: The interpreter's own -S for the workers, so that a run against a copy of the package (on PYTHONPATH, without
#: site-packages' import hooks, as in tests/sanitizers/run.sh) imports that copy.
SITE_FLAGS = ["-S"] if sys.flags.no_site else []


def worker(estimator: str, start: int, stop: int) -> None:
    """Run cases [start, stop) of ``estimator``, printing one JSON line per case before and after it."""
    sys.path.insert(0, str(HERE))
    from cases import Chooser, make_case, run_case

    for index in range(start, stop):
        print(json.dumps({"start": index}), flush=True)
        try:
            outcome = run_case(make_case(Chooser(index), estimator))
            print(json.dumps({"done": index, "outcome": outcome}), flush=True)
        except AssertionError as error:
            print(json.dumps({"done": index, "outcome": "failed", "message": str(error),
                              "trace": traceback.format_exc()[-1500:]}), flush=True)


def forward(stream: Any, lines: queue.Queue) -> None:
    """Put every line of ``stream`` into ``lines``, then None."""
    for line in stream:
        lines.put(line)
    lines.put(None)


def run(estimator: str, n_cases: int, timeout: float, jobs: int) -> dict:
    """Run the cases of one estimator in ``jobs`` workers (each a range of cases, restarted after a crash)."""
    counts = {"cases": 0, "fitted": 0, "refused": 0, "failed": 0, "crashed": 0, "hung": 0}
    problems: list[dict] = []
    started = time.perf_counter()
    lock = threading.Lock()

    def slot(begin: int, end: int) -> None:
        while begin < end:
            command = [sys.executable, *SITE_FLAGS, __file__, "--worker", estimator, str(begin), str(end)]
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                       env={**os.environ, "OMP_NUM_THREADS": "1"})
            current = [begin]
            lines: queue.Queue = queue.Queue()
            threading.Thread(target=forward, args=(process.stdout, lines), daemon=True).start()
            hung = False
            while True:
                try:
                    line = lines.get(timeout=timeout)
                except queue.Empty:  # no line for `timeout` seconds: the case hangs
                    process.kill()
                    hung = True
                    break
                if line is None:
                    break
                record = json.loads(line)
                if "start" in record:
                    current[0] = record["start"]
                    continue
                with lock:
                    counts["cases"] += 1
                    counts[record["outcome"]] += 1
                    if record["outcome"] == "failed":
                        problems.append({"case": record["done"], "failed": record["message"],
                                         "trace": record["trace"]})
                begin = record["done"] + 1
            process.wait()
            if hung or process.returncode != 0:  # died or hung in the middle of a case
                with lock:
                    counts["cases"] += 1
                    counts["hung" if hung else "crashed"] += 1
                    problems.append({"case": current[0], "hung" if hung else "crashed": timeout if hung else
                                     process.returncode, "stderr": process.stderr.read()[-1500:]})
                begin = current[0] + 1

    threads = [threading.Thread(target=slot, args=(n_cases * j // jobs, n_cases * (j + 1) // jobs))
               for j in range(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"estimator": estimator, **counts, "seconds": round(time.perf_counter() - started, 1),
            "problems": problems}


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return 0
    sys.path.insert(0, str(HERE))
    from cases import ESTIMATORS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=10000, help="cases per estimator")
    parser.add_argument("--only", nargs="*", default=list(ESTIMATORS), choices=ESTIMATORS)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before a case counts as hung")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes per estimator")
    parser.add_argument("--json", help="write every count and problem to this file")
    arguments = parser.parse_args()
    results = []
    bad = 0
    for estimator in arguments.only:
        result = run(estimator, arguments.cases, arguments.timeout, arguments.jobs)
        results.append(result)
        bad += result["failed"] + result["crashed"] + result["hung"]
        print(f"{estimator:14s} cases {result['cases']:6d}  fitted {result['fitted']:6d}  "
              f"refused {result['refused']:6d}  failed {result['failed']}  crashed {result['crashed']}  "
              f"hung {result['hung']}  {result['seconds']:.0f} s", flush=True)
        for problem in result["problems"][:5]:
            print("   ", json.dumps(problem)[:1500], flush=True)
    if arguments.json:
        Path(arguments.json).write_text(json.dumps(results, indent=1))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

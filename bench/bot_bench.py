"""Benchmark the Telegram bot: `/status` reply latency and the bot's resident memory.

    .venv/bin/python bench/bot_bench.py [--events 1000000] [--runs 50]

The real `factoryctl bot` long-polls the local Bot API stand-in on 127.0.0.1, over a
factory whose experiment log holds `--events` events (made as in state_bench.py). Latency
is from the message entering the stand-in to the reply arriving there: the whole round
trip a person waits for, less Telegram's own network. Targets: p95 <= 500 ms on
1,000,000 events; RSS <= 80 MB.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from state_bench import make_log  # noqa: E402

from tests.integration.bot_support import CHAT, TOKEN, bot_config, running_bot  # noqa: E402
from tests.support.telegram_standin import StandIn  # noqa: E402


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def measure(events: int, runs: int) -> None:
    standin = StandIn(TOKEN).start()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "factory"
        t0 = time.perf_counter()
        make_log(home / "state" / "experiment-log.jsonl", events, datetime.now(UTC))
        made = time.perf_counter() - t0
        (home / "factory.toml").write_text(bot_config(standin))
        with running_bot(home, log_path=Path(tmp) / "bot.log") as proc:
            standin.say(CHAT, "/help")  # warm up: the first answer imports the command modules
            standin.wait_messages(CHAT, 1, timeout=60)
            samples = []
            for i in range(runs):
                start = time.perf_counter()
                standin.say(CHAT, "/status")
                standin.wait_messages(CHAT, 1, after=1 + i, timeout=60)
                samples.append(time.perf_counter() - start)
            rss = psutil.Process(proc.pid).memory_info().rss
    standin.stop()
    print(f"log of {events:>9,} events (made in {made:.1f}s): /status reply over {runs} runs: "
          f"median {statistics.median(samples) * 1000:.0f} ms, p95 {p95(samples) * 1000:.0f} ms, "
          f"max {max(samples) * 1000:.0f} ms; bot RSS {rss / 2**20:.0f} MiB")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    for events in (1_000, args.events):
        measure(events, args.runs)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
# External correctness reward for grpo_train (reward_command): the last number after the last
# "####" equals the gold. One JSON request line in, one reply line out (README "Rewards").
# bench/vs_trl/trl_side.py imports `correct` as TRL's reward function.
import json, re, sys


def correct(text, gold):
    nums = re.findall(r"-?\d[\d,]*(?:\.\d+)?", text.rsplit("####", 1)[1].split("\n")[0]) if "####" in text else []
    return float(bool(nums) and abs(float(nums[-1].replace(",", "")) - gold) <= 1e-6 * max(1, abs(gold)))


if __name__ == "__main__":
    for line in sys.stdin:
        req = json.loads(line)
        out = [correct(text, gold) for text, gold in zip(req["completions"], req["golds"])]
        print(json.dumps({"rewards": {"correct_py": out}}), flush=True)

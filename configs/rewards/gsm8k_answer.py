#!/usr/bin/env python3
# External correctness reward for grpo_train (reward_command): the last number after the last
# "####" equals the gold. One JSON request line in, one reply line out (README "Rewards").
import json, re, sys
for line in sys.stdin:
    req, out = json.loads(line), []
    for text, gold in zip(req["completions"], req["golds"]):
        nums = re.findall(r"-?\d[\d,]*(?:\.\d+)?", text.rsplit("####", 1)[1].split("\n")[0]) if "####" in text else []
        out.append(float(bool(nums) and abs(float(nums[-1].replace(",", "")) - gold) <= 1e-6 * max(1, abs(gold))))
    print(json.dumps({"rewards": {"correct_py": out}}), flush=True)

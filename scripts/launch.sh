#!/usr/bin/env bash
# Several ranks on one machine without torchrun: the environment torchrun gives each process (RANK,
# WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT, and OMP_NUM_THREADS=1 where
# unset and -n > 1: ranks that each take every core spin on each other's), nothing else. For a LibTorch
# whose torchrun cannot start (Debian 13's python3-torch 2.6: no libuv, --standalone fails) or a box
# with no Python at all. Rank 0 hosts the rendezvous store itself (no agent store).
#   scripts/launch.sh -n N [--port P] [--addr A] [--node-rank R --nodes M] -- PROGRAM ARGS...
# Ranks of this node: R*N .. R*N+N-1 of WORLD_SIZE = N*M. Output: rank 0's on stdout/stderr, the
# others' (silenced by grpo_train itself) too. Exit: the first non-zero status in rank order, else 0.
set -euo pipefail
n=1 port="${MASTER_PORT:-29500}" addr="${MASTER_ADDR:-127.0.0.1}" node=0 nodes=1
while (($#)); do
  case "$1" in
    -n) n="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --addr) addr="$2"; shift 2 ;;
    --node-rank) node="$2"; shift 2 ;;
    --nodes) nodes="$2"; shift 2 ;;
    --) shift; break ;;
    *) echo "launch.sh: unknown option '$1' (expected -n, --port, --addr, --node-rank, --nodes, then -- PROGRAM ...)" >&2; exit 2 ;;
  esac
done
(($#)) || { echo "launch.sh: no program after --" >&2; exit 2; }
[[ "$n" =~ ^[1-9][0-9]*$ && "$nodes" =~ ^[1-9][0-9]*$ && "$node" =~ ^[0-9]+$ ]] && ((node < nodes)) ||
  { echo "launch.sh: expected -n >= 1, --nodes >= 1, 0 <= --node-rank < --nodes; found -n $n --nodes $nodes --node-rank $node" >&2; exit 2; }
world=$((n * nodes))
((n > 1)) && export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
pids=()
for ((l = 0; l < n; ++l)); do
  RANK=$((node * n + l)) WORLD_SIZE=$world LOCAL_RANK=$l LOCAL_WORLD_SIZE=$n MASTER_ADDR="$addr" MASTER_PORT="$port" "$@" &
  pids+=($!)
done
trap 'kill -TERM "${pids[@]}" 2>/dev/null || true' INT TERM
# A rank that fails ends the others itself (grpo_train's heartbeat and error broadcast: seconds),
# so waiting for each in turn returns soon after any of them fails.
status=0
for p in "${pids[@]}"; do
  rc=0; wait "$p" || rc=$?
  ((status == 0)) && status=$rc
done
exit $status

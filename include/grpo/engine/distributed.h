// distributed.h: data-parallel ranks over LibTorch's own c10d (TCPStore for the rendezvous,
// ProcessGroupGloo on the CPU, ProcessGroupNCCL on CUDA), launched by torchrun or any launcher
// that sets the same environment. The reference is PyTorch's DistributedDataParallel with
// init_process_group("env://"): same variables, same store, same collectives.
//
// Deliberate departures from DDP:
// - gradients are summed (not averaged): each rank's loss is already its share of the global loss
//   (dapo / dr_grpo divide by global counts; grpo / bnpo scale by 1 / (K W)), so the sum is the
//   one-process gradient of the same total batch;
// - the all-reduce runs once per optimizer step, after the K micro-batches, in buckets, not
//   overlapped with backward (on one node the step is dominated by the rollout, not by it);
// - a heartbeat in the store names the rank that died when a collective fails, instead of a
//   bare "connection closed by peer".
//
// Without RANK / WORLD_SIZE in the environment a run is one process: a Dist() with world size 1
// whose collectives are the identity.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "grpo/config/config.h"

namespace grpo {

// What the launcher says: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT (torchrun's names).
struct DistEnv {
  bool launched = false;  // RANK and WORLD_SIZE are set
  int rank = 0, world_size = 1, local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  bool agent_store = false;  // torchrun's agent hosts the store (TORCHELASTIC_USE_AGENT_STORE=True)
  std::string run_id;        // keys of this run (and restart) in the store
};
// Throws naming the variable and its value when one is malformed or inconsistent.
DistEnv read_dist_env();

// The backend `auto` resolves to on a device; throws when nccl is asked for without CUDA or NCCL.
DistBackend resolve_backend(DistBackend requested, const torch::Device& device);
bool nccl_available();  // this build compiled ProcessGroupNCCL (a CUDA LibTorch with nccl.h)

class Dist {
 public:
  Dist();  // one process
  // Rendezvous and a process group; waits at most timeout_s for the other ranks.
  static std::shared_ptr<Dist> connect(const DistEnv& env, DistBackend backend, const torch::Device& device, int timeout_s);
  ~Dist();
  Dist(const Dist&) = delete;
  Dist& operator=(const Dist&) = delete;

  int rank() const { return rank_; }
  int world_size() const { return world_; }
  bool is_main() const { return rank_ == 0; }
  bool active() const { return impl_ != nullptr; }
  std::string backend_name() const;

  // ---- collectives (every rank calls them in the same order); the identity in one process
  enum class Op { Sum, Max, Min };
  void all_reduce(std::vector<torch::Tensor>& tensors, Op op = Op::Sum);  // in place
  double all_reduce(double x, Op op = Op::Sum);
  std::vector<double> all_reduce(std::vector<double> xs, Op op = Op::Sum);
  // Sum of every parameter's .grad over the ranks, in buckets of <= bucket_elems; a missing
  // gradient counts as zeros.
  void all_reduce_grads(const std::vector<torch::Tensor>& params, int64_t bucket_elems = int64_t(1) << 24);
  // x summed over the ranks, arriving at rank `root` only (the others get an undefined tensor).
  torch::Tensor reduce(const torch::Tensor& x, int root);
  // x (n, ...) from every rank -> (W n, ...) in rank order; n and the trailing shape must agree.
  torch::Tensor all_gather(const torch::Tensor& x);
  std::vector<std::string> all_gather(const std::string& s);  // one string per rank, any lengths
  void broadcast(std::vector<torch::Tensor> tensors);         // rank 0's values into everyone's
  void barrier();
  // Every rank holds the same values of `params` (the sum and the sum of squares of each, in
  // float64, must agree exactly); throws naming the first parameter and rank that differ.
  void check_same(const std::vector<torch::Tensor>& params, const std::vector<std::string>& names, const std::string& when);

  // This rank failed: tell the others why (read when their next collective fails).
  void report_failure(const std::string& message) noexcept;

 private:
  struct Impl;  // the store, the process group and the heartbeat (c10d types stay in the .cpp)
  template <class F>
  void guarded(const char* what, F&& fn);
  // Each tensor through `collective` (given its copy on the communication device), in place.
  template <class F>
  void in_place(const char* what, std::vector<torch::Tensor>& tensors, F&& collective);
  [[noreturn]] void diagnose(const char* what, const std::string& cause);
  torch::Tensor to_comm(const torch::Tensor& x) const;

  int rank_ = 0, world_ = 1;
  std::unique_ptr<Impl> impl_;
};

}  // namespace grpo

// device.h: what the trainer asks of the device beyond tensors: synchronisation, peak memory (the
// CUDA caching allocator's high-water mark on a GPU, peak RSS on the CPU), a measured copy
// bandwidth for roofline numbers, and CUDA graphs for the decode step.
//
// The CUDA parts are compiled only when LibTorch was built with CUDA (CMake defines GRPO_CUDA);
// they use APIs present in both LibTorch 1.13 and 2.x (CUDAGraph::capture_begin(pool),
// CUDACachingAllocator::getDeviceStats / resetPeakStats). On a CPU-only build the same calls
// exist and say what they cannot do.
#pragma once

#include <ATen/Config.h>
#include <torch/torch.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "grpo/base/settings.h"

namespace grpo {

// ---------------------------------------------------------------------------------------------
// Process runtime (CPU threads and memory)

// Process-wide setup for the executables: intra-op threads (0 = OMP_NUM_THREADS when set, else
// every core; LibTorch's OpenMP default here is 1 on 2 cores) and glibc malloc settings that keep
// large freed blocks for reuse instead of unmapping them each step (that churn doubled the CPU
// decode time).
//
// Before any of that, at load time, grpo_train, grpo_eval, grpo_sft, grpo_generate and the
// benchmarks run with OMP_WAIT_POLICY=passive when omp_passive_by_default() and neither
// OMP_WAIT_POLICY nor GOMP_SPINCOUNT is set: LibTorch's idle OpenMP workers would otherwise spin on
// the cores that OpenBLAS's own threads need for each GEMM (Debian's LibTorch calls the pthread
// OpenBLAS). On the 2-core CI machine that contention made CPU decoding 3.9-6.3x and the update
// 1.2-2.6x slower (docs/benchmarks.md, "CPU: OpenMP wait policy"). libgomp reads the variable only
// when it is loaded, so the program execs itself once with it, from its .preinit_array
// (src/omp_wait_policy.cpp says why nothing later works).
void init_runtime(int threads = 0);
// True where LibTorch's BLAS has threads of its own (OpenBLAS); false where it is MKL running on
// LibTorch's own OpenMP pool (pip torch), whose spinning idle workers are the next GEMM's threads.
constexpr bool omp_passive_by_default() {
  return AT_MKL_ENABLED() == 0;
}
// "threads T, OMP_WAIT_POLICY=..." as this process runs (for the run's header).
std::string runtime_summary();
// "LibTorch 2.11.0, CUDA build (GRPO_CUDA, CUDA runtime 13.0), 0 GPU(s) visible" (--version).
std::string build_summary();

// ---------------------------------------------------------------------------------------------
// Device

// True when this build links a CUDA LibTorch (GRPO_CUDA), whether or not a GPU is present.
bool built_with_cuda();

// Make a CUDA device the current one (a rank's cuda:LOCAL_RANK; NCCL and the caching allocator
// use it); no-op on the CPU.
void set_current_device(const torch::Device& device);

// Wait for the device's queued work (no-op on the CPU).
void synchronize(const torch::Device& device);
// Seconds since t0 once the device's queued work is done: a phase's own time.
double seconds_since(std::chrono::steady_clock::time_point t0, const torch::Device& device);

// Peak memory in MiB since the last reset: CUDA allocated bytes (the caching allocator's
// high-water mark) on a GPU; the process's peak RSS on the CPU (which cannot be reset).
double peak_memory_mb(const torch::Device& device);
void reset_peak_memory(const torch::Device& device);

// The median wall time of `reps` calls of fn, each followed by synchronize(device), after
// `warmup` untimed calls.
double median_seconds(const torch::Device& device, const std::function<void()>& fn, int reps, int warmup);

// Device memory bandwidth in GB/s, counting bytes read plus bytes written, from the median of
// `reps` copies of a `bytes`-sized buffer (the roofline's denominator).
double measure_copy_bandwidth_gbps(const torch::Device& device, int64_t bytes = int64_t(1) << 30, int reps = 20);

// ---------------------------------------------------------------------------------------------
// CUDA graph of a fixed piece of device work (the decode step). `fn` must have static shapes,
// read its inputs from and write its outputs to tensors whose storage outlives the graph, and
// never synchronise with the host. capture() runs fn `warmup` times eagerly on a side stream
// (lazy initialisation such as cuBLAS workspaces must not happen during capture), then records one
// call without executing it; replay() executes the recording on the current stream. Graphs made
// by one process share one memory pool.

class CudaGraph {
 public:
  CudaGraph();
  ~CudaGraph();
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;
  void capture(const torch::Device& device, const std::function<void()>& fn, int warmup = 2);
  void replay();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The device and dtype settings (config.h's DeviceSetting and Precision) made concrete: the one
// place that decides them. auto: cuda:0 when CUDA is available, else the CPU; bf16 on CUDA, fp32
// on CPU. A CUDA device without CUDA throws.
torch::Device resolve_device(const DeviceSetting& d);
// As resolve_device, but a CUDA setting names its device even where CUDA is not available (auto stays
// the machine's): --dry-run plans a GPU config's memory on any machine.
torch::Device planned_device(const DeviceSetting& d);
torch::Dtype resolve_dtype(Precision p, const torch::Device& device);
// The same from a command-line flag's text (the tools' --device / --dtype).
torch::Device parse_device(const std::string& name);
torch::Dtype parse_dtype(const std::string& name, const torch::Device& device);

}  // namespace grpo

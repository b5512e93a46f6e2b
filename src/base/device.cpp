// device.cpp: synchronisation, peak memory, copy bandwidth and CUDA graphs; see device.h.
#include "grpo/base/device.h"

#include <malloc.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "grpo/base/common.h"

#ifdef GRPO_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#endif

namespace grpo {

// ---------------------------------------------------------------------------------------------
// Process runtime

void init_runtime(int threads) {
  // OMP_NUM_THREADS wins over the core count, as in PyTorch: two jobs sharing a box each ask for
  // half of it instead of both spinning on every core.
  if (threads <= 0) {
    const char* env = std::getenv("OMP_NUM_THREADS");
    const int from_env = env ? std::atoi(env) : 0;
    threads = from_env > 0 ? from_env : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }
  torch::set_num_threads(threads);
  // A file-size limit (ulimit -f) then fails the write with EFBIG, which we report and recover
  // from, instead of killing the process with SIGXFSZ in the middle of a checkpoint.
  std::signal(SIGXFSZ, SIG_IGN);
  ::mallopt(M_MMAP_THRESHOLD, 32 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 1 << 30);
  ::mallopt(M_TOP_PAD, 64 << 20);
}

std::string runtime_summary() {
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  const char* spin = std::getenv("GOMP_SPINCOUNT");
  return "threads " + std::to_string(torch::get_num_threads()) + ", OMP_WAIT_POLICY=" + (policy ? policy : "(unset)") +
         (spin ? std::string(", GOMP_SPINCOUNT=") + spin : std::string());
}

std::string build_summary() {
  std::string s = "LibTorch " + std::string(TORCH_VERSION);
#ifdef GRPO_CUDA
  s += ", CUDA build (GRPO_CUDA, CUDA runtime " + std::to_string(CUDART_VERSION / 1000) + "." + std::to_string(CUDART_VERSION % 1000 / 10) +
       "), " + std::to_string(torch::cuda::device_count()) + " GPU(s) visible";
#else
  s += ", CPU build";
#endif
  s += omp_passive_by_default() ? ", BLAS with its own threads (OMP_WAIT_POLICY default: passive)"
                                : ", MKL on the OpenMP pool (OMP_WAIT_POLICY default: libgomp's)";
  return s;
}

// ---------------------------------------------------------------------------------------------
// Device

bool built_with_cuda() {
#ifdef GRPO_CUDA
  return true;
#else
  return false;
#endif
}

namespace {
// The CUDA device index of `device` ("cuda" without an index means the current one, 0 here).
int cuda_index(const torch::Device& device) {
  return device.has_index() ? device.index() : 0;
}
}  // namespace

void set_current_device(const torch::Device& device) {
#ifdef GRPO_CUDA
  if (device.is_cuda()) c10::cuda::set_device(static_cast<c10::DeviceIndex>(cuda_index(device)));
#else
  (void)device;
#endif
}

void synchronize(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(cuda_index(device));
}

double seconds_since(std::chrono::steady_clock::time_point t0, const torch::Device& device) {
  synchronize(device);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median_seconds(const torch::Device& device, const std::function<void()>& fn, int reps, int warmup) {
  for (int i = 0; i < warmup; ++i) fn();
  synchronize(device);
  std::vector<double> secs;
  for (int i = 0; i < reps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    synchronize(device);
    secs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::nth_element(secs.begin(), secs.begin() + secs.size() / 2, secs.end());
  return secs[secs.size() / 2];
}

// ---------------------------------------------------------------------------------------------
// Peak memory

double peak_memory_mb(const torch::Device& device) {
#ifdef GRPO_CUDA
  if (device.is_cuda()) {
    // allocated_bytes[0] is the aggregate over pool types (StatType::AGGREGATE in 1.13 and 2.x).
    auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(cuda_index(device));
    return static_cast<double>(stats.allocated_bytes[0].peak) / (1 << 20);
  }
#endif
  if (device.is_cuda()) throw Error("peak_memory_mb: this build has no CUDA support");
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;
}

void reset_peak_memory(const torch::Device& device) {
#ifdef GRPO_CUDA
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(cuda_index(device));
#else
  (void)device;
#endif
}

// ---------------------------------------------------------------------------------------------
// Copy bandwidth

double measure_copy_bandwidth_gbps(const torch::Device& device, int64_t bytes, int reps) {
  auto opts = torch::TensorOptions().dtype(torch::kUInt8).device(device);
  auto src = torch::randint(0, 255, {bytes}, opts), dst = torch::empty({bytes}, opts);
  // Warm-ups: page faults, clocks.
  return 2.0 * double(bytes) /
         median_seconds(
             device, [&] { dst.copy_(src); }, reps, 3) /
         1e9;  // read + write
}

// ---------------------------------------------------------------------------------------------
// CUDA graphs

#ifdef GRPO_CUDA
struct CudaGraph::Impl {
  at::cuda::CUDAGraph graph;
  bool captured = false;
};

namespace {
// One pool for every graph of the process: graphs replayed one after another may share memory.
// (The pool id type moved between namespaces across LibTorch versions; decltype follows it.)
decltype(at::cuda::graph_pool_handle()) shared_pool() {
  static const auto pool = at::cuda::graph_pool_handle();
  return pool;
}
}  // namespace
#else
struct CudaGraph::Impl {
  bool captured = false;
};
#endif

// No graph object until a capture: at::cuda::CUDAGraph's constructor asks for the current CUDA
// stream, which throws on a machine without a GPU (a CUDA build whose decoder runs on the CPU).
CudaGraph::CudaGraph() = default;
CudaGraph::~CudaGraph() = default;

void CudaGraph::capture(const torch::Device& device, const std::function<void()>& fn, int warmup) {
#ifdef GRPO_CUDA
  TORCH_CHECK(device.is_cuda(), "CudaGraph::capture: needs a CUDA device, got ", device.str());
  impl_ = std::make_unique<Impl>();  // a fresh graph object: a used one may refuse a second capture
  c10::cuda::CUDAGuard device_guard(device);
  // Capture must not run on the legacy default stream; warm-up runs on the same side stream.
  auto stream = c10::cuda::getStreamFromPool(/*isHighPriority=*/false, cuda_index(device));
  synchronize(device);
  {
    c10::cuda::CUDAStreamGuard stream_guard(stream);
    for (int i = 0; i < warmup; ++i) fn();
    stream.synchronize();
    impl_->graph.capture_begin(shared_pool());
    fn();
    impl_->graph.capture_end();
  }
  synchronize(device);
  impl_->captured = true;
#else
  (void)device;
  (void)fn;
  (void)warmup;
  throw Error("CUDA graphs: this build of grpo_train has no CUDA support (built against a CPU LibTorch)");
#endif
}

void CudaGraph::replay() {
  TORCH_CHECK(impl_ && impl_->captured, "CudaGraph::replay: nothing captured");
#ifdef GRPO_CUDA
  impl_->graph.replay();
#endif
}

// ---------------------------------------------------------------------------------------------
// The device and dtype settings

torch::Device resolve_device(const DeviceSetting& d) {
  switch (d.kind) {
    case DeviceSetting::Kind::Auto:
      return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
    case DeviceSetting::Kind::Cpu:
      return torch::kCPU;
    default:
      break;
  }
  if (!torch::cuda::is_available())
    throw Error("device '" + device_setting_name(d) + "': CUDA is not available in this build or on this machine");
  return d.index < 0 ? torch::Device(torch::kCUDA) : torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(d.index));
}

torch::Device planned_device(const DeviceSetting& d) {
  if (d.kind != DeviceSetting::Kind::Cuda || torch::cuda::is_available()) return resolve_device(d);
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(std::max(d.index, 0)));
}

torch::Dtype resolve_dtype(Precision p, const torch::Device& device) {
  switch (p) {
    case Precision::Float32:
      return torch::kFloat32;
    case Precision::BFloat16:
      return torch::kBFloat16;
    case Precision::Float16:
      return torch::kFloat16;
    default:
      return device.is_cuda() ? torch::kBFloat16 : torch::kFloat32;
  }
}

torch::Device parse_device(const std::string& name) {
  return resolve_device(parse_device_setting(name, "device"));
}

torch::Dtype parse_dtype(const std::string& name, const torch::Device& device) {
  return resolve_dtype(parse_precision(name, "dtype"), device);
}

}  // namespace grpo

// distributed.cpp: the c10d rendezvous, process group, collectives and the rank-death diagnosis;
// see distributed.h.
//
// LibTorch 1.13 and 2.x differ in one place here: the process groups derive from
// c10d::ProcessGroup in 1.x and from c10d::Backend in 2.x (the collectives' signatures are the
// same). NCCL is compiled where LibTorch is a CUDA build and nccl.h is found (GRPO_NCCL).
#include "grpo/engine/distributed.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#if GRPO_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <thread>

#include "grpo/base/common.h"

namespace grpo {

#if TORCH_VERSION_MAJOR >= 2
using ProcessGroupBase = c10d::Backend;
#else
using ProcessGroupBase = c10d::ProcessGroup;
#endif

namespace {

// ---------------------------------------------------------------------------------------------
// The environment

int env_int(const char* name, int fallback, int lo, int hi) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  errno = 0;
  const long x = std::strtol(v, &end, 10);
  if (*end != '\0' || errno != 0 || x < lo || x > hi)
    throw Error("environment variable " + std::string(name) + ": expected an integer in [" + std::to_string(lo) + ", " +
                std::to_string(hi) + "], found " + quote(v));
  return static_cast<int>(x);
}

std::string env_str(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

std::vector<uint8_t> bytes_of(const std::string& s) {
  return {s.begin(), s.end()};
}
std::string text_of(const std::vector<uint8_t>& b) {
  return {b.begin(), b.end()};
}

std::string first_line(const std::string& s) {
  return s.substr(0, s.find('\n'));
}

}  // namespace

DistEnv read_dist_env() {
  DistEnv e;
  const bool has_rank = std::getenv("RANK") != nullptr, has_world = std::getenv("WORLD_SIZE") != nullptr;
  if (!has_rank && !has_world) return e;
  if (has_rank != has_world)
    throw Error(std::string("environment: ") + (has_rank ? "RANK is set but WORLD_SIZE is not" : "WORLD_SIZE is set but RANK is not") +
                "; a data-parallel run needs both (torchrun sets them), a single-process run neither");
  e.launched = true;
  e.world_size = env_int("WORLD_SIZE", 1, 1, 1 << 20);
  e.rank = env_int("RANK", 0, 0, e.world_size - 1);
  e.local_rank = env_int("LOCAL_RANK", e.rank, 0, 1 << 20);
  e.master_addr = env_str("MASTER_ADDR", "127.0.0.1");
  e.master_port = env_int("MASTER_PORT", 29500, 1, 65535);
  e.agent_store = env_str("TORCHELASTIC_USE_AGENT_STORE", "") == "True";
  e.run_id = "grpo/" + env_str("TORCHELASTIC_RUN_ID", "run") + "/" + env_str("TORCHELASTIC_RESTART_COUNT", "0") + "/";
  return e;
}

DistBackend resolve_backend(DistBackend requested, const torch::Device& device) {
  const DistBackend b = requested != DistBackend::Auto ? requested : device.is_cuda() ? DistBackend::Nccl : DistBackend::Gloo;
  if (b == DistBackend::Nccl && !nccl_available())
    throw Error("config key 'dist_backend': nccl, but this build has no NCCL (a CUDA LibTorch and nccl.h are needed); use gloo");
  if (b == DistBackend::Nccl && !device.is_cuda())
    throw Error("config key 'dist_backend': nccl needs a CUDA device, and this run's device is " + device.str() + "; use gloo");
  return b;
}

bool nccl_available() {
#if GRPO_NCCL
  return true;
#else
  return false;
#endif
}

// ---------------------------------------------------------------------------------------------
// The process group and the heartbeat

struct Dist::Impl {
  DistEnv env;
  DistBackend backend = DistBackend::Gloo;
  torch::Device comm_device{torch::kCPU};
  std::chrono::milliseconds timeout{0};
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<ProcessGroupBase> pg;
  std::thread heartbeat;
  std::atomic<bool> stop{false};
};

namespace {

// The rendezvous store. Since LibTorch 2.4 TCPStoreOptions asks for the libuv backend by default,
// and a LibTorch built without libuv (Debian 13's 2.6) refuses it outright; the build does not
// export whether it has libuv, so: USE_LIBUV=0 never asks (as PyTorch honours it), otherwise
// libuv is tried first and a "built without libuv" refusal falls back to the classic store.
// `use_libuv`: in, whether to ask for libuv; out, whether the store that opened (or failed last)
// asked for it, so that a second connection (the heartbeat's) goes straight to what worked.
c10::intrusive_ptr<c10d::Store> open_store(const DistEnv& env, bool server, std::chrono::milliseconds timeout, bool& use_libuv) {
  c10d::TCPStoreOptions o;
  o.port = static_cast<uint16_t>(env.master_port);
  o.isServer = server;
  o.waitWorkers = false;
  o.timeout = timeout;
  auto open = [&] { return c10::make_intrusive<c10d::PrefixStore>(env.run_id, c10::make_intrusive<c10d::TCPStore>(env.master_addr, o)); };
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  o.useLibUV = use_libuv;
  try {
    return open();
  } catch (const std::exception& e) {
    if (!o.useLibUV || std::string(e.what()).find("libuv") == std::string::npos) throw;
    o.useLibUV = use_libuv = false;
    return open();
  }
#else
  use_libuv = false;
  return open();
#endif
}

// Which stores open_store tried, for an error: asked = use_libuv before the call, now = after it.
std::string stores_tried(bool asked, bool now) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  if (!asked) return "the classic TCPStore (USE_LIBUV=0)";
  return now ? "the libuv TCPStore" : "the libuv TCPStore (this LibTorch is built without libuv), then the classic TCPStore";
#else
  (void)asked;
  (void)now;
  return "the TCPStore";
#endif
}

std::shared_ptr<::gloo::transport::Device> gloo_device(const DistEnv& env) {
  const std::string ifname = env_str("GLOO_SOCKET_IFNAME", "");
  if (!ifname.empty()) return c10d::ProcessGroupGloo::createDeviceForInterface(ifname);
  if (env.master_addr == "localhost" || env.master_addr.rfind("127.", 0) == 0)
    return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");  // one machine: loopback
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

}  // namespace

std::shared_ptr<Dist> Dist::connect(const DistEnv& env, DistBackend requested, const torch::Device& device, int timeout_s) {
  auto d = std::make_shared<Dist>();
  d->rank_ = env.rank;
  d->world_ = env.world_size;
  d->impl_ = std::make_unique<Impl>();
  Impl& im = *d->impl_;
  im.env = env;
  im.backend = resolve_backend(requested, device);
  im.timeout = std::chrono::milliseconds(int64_t(timeout_s) * 1000);
  const std::string where = env.master_addr + ":" + std::to_string(env.master_port);
  const bool ask_libuv = env_str("USE_LIBUV", "1") != "0";
  bool use_libuv = ask_libuv;
  try {
    im.store = open_store(env, env.rank == 0 && !env.agent_store, im.timeout, use_libuv);
  } catch (const std::exception& e) {
    throw Error("rank " + std::to_string(env.rank) + ": cannot reach the rendezvous store at " + where +
                " (MASTER_ADDR:MASTER_PORT) within dist_timeout_s = " + std::to_string(timeout_s) + " s, tried " +
                stores_tried(ask_libuv, use_libuv) + ": " + first_line(error_text(e)));
  }
  try {
    if (im.backend == DistBackend::Gloo) {
      auto opts = c10d::ProcessGroupGloo::Options::create(im.timeout);
      opts->devices.push_back(gloo_device(env));
      im.pg = c10::make_intrusive<c10d::ProcessGroupGloo>(im.store, env.rank, env.world_size, opts);
    } else {
#if GRPO_NCCL
      im.comm_device = device;
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = im.timeout;
      im.pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(im.store, env.rank, env.world_size, opts);
#endif
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error("rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size) + ": the " + d->backend_name() +
                " process group did not form within dist_timeout_s = " + std::to_string(timeout_s) +
                " s (are all ranks started, with the same MASTER_ADDR:MASTER_PORT " + where + "?): " + first_line(error_text(e)));
  }
  // The heartbeat: its own connection (a store client is not shared between threads).
  auto beat_store = open_store(env, false, im.timeout, use_libuv);
  im.heartbeat = std::thread([&im, beat_store, rank = env.rank] {
    for (int64_t n = 0; !im.stop.load(); ++n) {
      try {
        beat_store->set("alive/" + std::to_string(rank), bytes_of(std::to_string(n)));
      } catch (...) {
        return;  // the store is gone (rank 0 ended): nothing left to tell
      }
      for (int i = 0; i < 10 && !im.stop.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  return d;
}

Dist::Dist() = default;

Dist::~Dist() {
  if (!impl_) return;
  impl_->stop.store(true);
  if (impl_->heartbeat.joinable()) impl_->heartbeat.join();
}

std::string Dist::backend_name() const {
  return impl_ ? choice_name(impl_->backend) : "none";
}

// ---------------------------------------------------------------------------------------------
// Failures: which rank, and why

void Dist::report_failure(const std::string& message) noexcept {
  if (!impl_) return;
  try {
    impl_->store->set("failed/" + std::to_string(rank_), bytes_of(first_line(message)));
  } catch (...) {
  }
}

void Dist::diagnose(const char* what, const std::string& cause) {
  std::string who;
  try {
    auto& store = *impl_->store;
    for (int r = 0; r < world_; ++r)  // a rank that failed with an error said why
      if (r != rank_ && store.check({"failed/" + std::to_string(r)}))
        who += (who.empty() ? "" : "; ") + std::string("rank ") + std::to_string(r) +
               " failed: " + text_of(store.get("failed/" + std::to_string(r)));
    if (who.empty()) {  // else the ranks whose heartbeat stopped
      auto beats = [&] {
        std::map<int, std::string> b;
        for (int r = 0; r < world_; ++r)
          if (r != rank_) b[r] = store.check({"alive/" + std::to_string(r)}) ? text_of(store.get("alive/" + std::to_string(r))) : "";
        return b;
      };
      auto before = beats();
      std::this_thread::sleep_for(std::chrono::seconds(3));
      auto after = beats();
      for (const auto& [r, b] : before)
        if (after[r] == b) who += (who.empty() ? "" : ", ") + std::string("rank ") + std::to_string(r);
      if (!who.empty()) who += " stopped (no heartbeat for 3 s: killed, crashed or hung)";
    }
  } catch (...) {
    who = impl_->env.agent_store || rank_ == 0 ? "the rendezvous store is unreachable (the launcher ended?)"
                                               : "rank 0 is gone (it hosts the rendezvous store)";
  }
  if (who.empty()) who = "no rank reported a failure and every heartbeat is alive (a collective mismatch or the network)";
  throw Error("data-parallel " + std::string(what) + " failed on rank " + std::to_string(rank_) + " of " + std::to_string(world_) + ": " +
              who + " [" + backend_name() + ": " + first_line(cause) + "]");
}

template <class F>
void Dist::guarded(const char* what, F&& fn) {
  try {
    fn();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    diagnose(what, error_text(e));
  }
}

// ---------------------------------------------------------------------------------------------
// Collectives

torch::Tensor Dist::to_comm(const torch::Tensor& x) const {
  return x.to(impl_->comm_device).contiguous();
}

namespace {
c10d::ReduceOp reduce_op(Dist::Op op) {
  return op == Dist::Op::Sum ? c10d::ReduceOp::SUM : op == Dist::Op::Max ? c10d::ReduceOp::MAX : c10d::ReduceOp::MIN;
}
}  // namespace

template <class F>
void Dist::in_place(const char* what, std::vector<torch::Tensor>& tensors, F&& collective) {
  if (!impl_) return;
  torch::NoGradGuard ng;
  guarded(what, [&] {
    for (auto& t : tensors) {
      std::vector<torch::Tensor> c{to_comm(t)};
      collective(c);
      if (!c[0].is_same(t)) t.copy_(c[0]);
    }
  });
}

void Dist::all_reduce(std::vector<torch::Tensor>& tensors, Op op) {
  c10d::AllreduceOptions o;
  o.reduceOp = reduce_op(op);
  in_place("all-reduce", tensors, [&](std::vector<torch::Tensor>& c) { impl_->pg->allreduce(c, o)->wait(); });
}

double Dist::all_reduce(double x, Op op) {
  return all_reduce(std::vector<double>{x}, op)[0];
}

std::vector<double> Dist::all_reduce(std::vector<double> xs, Op op) {
  if (!impl_ || xs.empty()) return xs;
  std::vector<torch::Tensor> t{torch::tensor(xs, torch::kFloat64)};
  all_reduce(t, op);
  auto c = t[0].to(torch::kCPU);
  for (size_t i = 0; i < xs.size(); ++i) xs[i] = c[int64_t(i)].item<double>();
  return xs;
}

void Dist::all_reduce_grads(const std::vector<torch::Tensor>& params, int64_t bucket_elems) {
  if (!impl_) return;
  torch::NoGradGuard ng;
  std::vector<torch::Tensor> grads;
  for (auto p : params) {
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    grads.push_back(p.grad());
  }
  // Consecutive gradients of one dtype, flattened into buckets of at most bucket_elems.
  for (size_t i = 0; i < grads.size();) {
    size_t j = i;
    int64_t n = 0;
    while (j < grads.size() && grads[j].scalar_type() == grads[i].scalar_type() && (j == i || n + grads[j].numel() <= bucket_elems))
      n += grads[j++].numel();
    std::vector<torch::Tensor> flat;
    for (size_t k = i; k < j; ++k) flat.push_back(grads[k].reshape({-1}));
    std::vector<torch::Tensor> bucket{torch::cat(flat)};
    all_reduce(bucket, Op::Sum);
    int64_t off = 0;
    for (size_t k = i; k < j; ++k) {
      grads[k].copy_(bucket[0].narrow(0, off, grads[k].numel()).view(grads[k].sizes()));
      off += grads[k].numel();
    }
    i = j;
  }
}

torch::Tensor Dist::reduce(const torch::Tensor& x, int root) {
  if (!impl_) return x;
  torch::NoGradGuard ng;
  torch::Tensor out;
  guarded("reduce", [&] {
    std::vector<torch::Tensor> c{to_comm(x).clone()};
    c10d::ReduceOptions o;
    o.rootRank = root;
    o.reduceOp = c10d::ReduceOp::SUM;
    impl_->pg->reduce(c, o)->wait();
    if (rank_ == root) out = c[0].to(x.device());
  });
  return out;
}

torch::Tensor Dist::all_gather(const torch::Tensor& x) {
  if (!impl_) return x;
  torch::Tensor out;
  guarded("all-gather", [&] {
    std::vector<torch::Tensor> in{to_comm(x)};
    std::vector<std::vector<torch::Tensor>> outs(1);
    for (int r = 0; r < world_; ++r) outs[0].push_back(torch::empty_like(in[0]));
    impl_->pg->allgather(outs, in)->wait();
    out = torch::cat(outs[0], 0).to(x.device());
  });
  return out;
}

std::vector<std::string> Dist::all_gather(const std::string& s) {
  if (!impl_) return {s};
  auto lens = all_gather(torch::tensor({int64_t(s.size())}, torch::kInt64));  // (W,)
  const int64_t width = std::max<int64_t>(1, lens.max().item<int64_t>());
  auto buf = torch::zeros({1, width}, torch::kUInt8);
  std::memcpy(buf.data_ptr(), s.data(), s.size());
  auto all = all_gather(buf).to(torch::kCPU).contiguous();  // (W, width)
  std::vector<std::string> out;
  for (int r = 0; r < world_; ++r)
    out.emplace_back(reinterpret_cast<const char*>(all[r].data_ptr()), static_cast<size_t>(lens[r].item<int64_t>()));
  return out;
}

void Dist::broadcast(std::vector<torch::Tensor> tensors) {
  c10d::BroadcastOptions o;
  o.rootRank = 0;
  in_place("broadcast", tensors, [&](std::vector<torch::Tensor>& c) { impl_->pg->broadcast(c, o)->wait(); });
}

void Dist::barrier() {
  if (!impl_) return;
  guarded("barrier", [&] { impl_->pg->barrier()->wait(); });
}

void Dist::check_same(const std::vector<torch::Tensor>& params, const std::vector<std::string>& names, const std::string& when) {
  if (!impl_) return;
  torch::NoGradGuard ng;
  std::vector<torch::Tensor> rows;
  for (const auto& p : params) {
    auto d = p.detach().to(torch::kFloat64);
    rows.push_back(torch::stack({d.sum(), d.square().sum()}));
  }
  const int64_t P = static_cast<int64_t>(params.size());
  auto all = all_gather(torch::stack(rows).to(torch::kCPU)).view({world_, P, 2});  // (W, P, 2)
  for (int r = 1; r < world_; ++r)
    for (int64_t i = 0; i < P; ++i)
      if (!torch::equal(all[r][i], all[0][i]))
        throw Error("parameter checksum " + when + ": rank " + std::to_string(r) + "'s '" + names.at(size_t(i)) + "' (sum " +
                    std::to_string(all[r][i][0].item<double>()) + ") differs from rank 0's (sum " +
                    std::to_string(all[0][i][0].item<double>()) +
                    "): the replicas diverged (a rank-local random draw, or a nondeterministic kernel?)");
}

}  // namespace grpo

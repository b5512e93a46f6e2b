// zero.cpp: AdamW sharded across the ranks (ZeRO-1/2) and its checkpoint shards; see zero.h.
#include "grpo/engine/zero.h"

#include <filesystem>

#include "grpo/base/common.h"
#include "grpo/base/safetensors.h"
#include "grpo/model/causal_lm.h"
#include "grpo/model/model_io.h"

namespace grpo {

FlatLayout::FlatLayout(const std::vector<torch::Tensor>& tensors, int world_size) : world(world_size) {
  for (const auto& t : tensors) {
    offsets.push_back(total);
    numels.push_back(t.numel());
    total += t.numel();
  }
  shard = (total + world - 1) / world;
}

// ---------------------------------------------------------------------------------------------
// The optimizer

ShardedAdamW::ShardedAdamW(std::vector<torch::Tensor> params, std::vector<std::string> names, AdamWSettings s, std::shared_ptr<Dist> dist,
                           int stage)
    : params_(std::move(params)), names_(std::move(names)), s_(s), dist_(std::move(dist)), stage_(stage) {
  layout_ = FlatLayout(params_, dist_->world_size());
  const int r = dist_->rank();
  auto dev = params_.at(0).device();
  state_.master = flat_params().narrow(0, layout_.lo(r), layout_.hi(r) - layout_.lo(r)).to(dev).clone();  // (S_r,)
  state_.exp_avg = torch::zeros_like(state_.master);
  state_.exp_avg_sq = torch::zeros_like(state_.master);
}

torch::Tensor ShardedAdamW::flat_params() const {
  torch::NoGradGuard ng;
  std::vector<torch::Tensor> parts;
  for (const auto& p : params_) parts.push_back(p.detach().reshape({-1}).to(torch::kCPU, torch::kFloat32));
  return torch::cat(parts);  // (P,)
}

int64_t ShardedAdamW::state_bytes() const {
  return (state_.master.numel() + state_.exp_avg.numel() + state_.exp_avg_sq.numel()) * int64_t(sizeof(float));
}

void ShardedAdamW::accumulate() {
  torch::NoGradGuard ng;
  if (stage_ >= 2) return reduce_into_share();
  if (!grad_.defined()) grad_ = torch::zeros({layout_.total}, params_[0].options().dtype(torch::kFloat32));
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& g = params_[i].mutable_grad();
    if (!g.defined()) continue;
    grad_.narrow(0, layout_.offsets[i], layout_.numels[i]).add_(g.reshape({-1}).to(torch::kFloat32));
    g = torch::Tensor();
  }
}

// Stage 2, after each micro-batch: the gradients in buckets of <= kZeroBucket elements of the flat
// vector; each bucket's part in rank r's range is summed onto rank r alone (a reduce per owner),
// which adds it to its share. No rank holds more than one fp32 bucket beyond its share.
void ShardedAdamW::reduce_into_share() {
  const int r = dist_->rank();
  const int64_t lo = layout_.lo(r), n = layout_.hi(r) - lo;
  if (!grad_.defined()) grad_ = torch::zeros({n}, params_[0].options().dtype(torch::kFloat32));  // (S_r,)
  for (size_t i = 0; i < params_.size();) {
    size_t j = i;
    int64_t len = 0;
    while (j < params_.size() && (j == i || len + layout_.numels[j] <= kZeroBucket)) len += layout_.numels[j++];
    std::vector<torch::Tensor> parts;
    for (size_t k = i; k < j; ++k) {
      auto& g = params_[k].mutable_grad();
      parts.push_back(g.defined() ? g.reshape({-1}).to(torch::kFloat32) : torch::zeros({layout_.numels[k]}, grad_.options()));
      g = torch::Tensor();
    }
    const torch::Tensor bucket = torch::cat(parts);  // (len,) = flat [a, a + len)
    const int64_t a = layout_.offsets[i];
    for (int owner = 0; owner < layout_.world; ++owner) {
      const int64_t from = std::max(a, layout_.lo(owner)), to = std::min(a + len, layout_.hi(owner));
      if (from >= to) continue;
      torch::Tensor sum = dist_->reduce(bucket.narrow(0, from - a, to - from), owner);
      if (owner == r) grad_.narrow(0, from - lo, to - from).add_(sum);
    }
    i = j;
  }
}

ShardedAdamW::Outcome ShardedAdamW::step(double lr, double max_norm) {
  torch::NoGradGuard ng;
  Outcome out;
  if (!grad_.defined()) accumulate();  // a step without micro-batches: zeros
  const int r = dist_->rank();
  const int64_t lo = layout_.lo(r), n = layout_.hi(r) - lo;
  // ---- 2. this rank's share of the summed gradient (stage 2: summed micro-batch by micro-batch)
  torch::Tensor g = grad_;  // (S_r,)
  if (stage_ < 2) {
    std::vector<torch::Tensor> all{grad_};
    dist_->all_reduce(all);
    g = grad_.narrow(0, lo, n).clone();
  }
  grad_ = torch::Tensor();  // the full buffer (stage 1) goes now
  // ---- 3. the global norm: every share's squared norm, summed over the ranks
  const double sq = dist_->all_reduce(g.to(torch::kFloat64).square().sum().item<double>());
  out.grad_norm = std::sqrt(sq);
  if (!std::isfinite(out.grad_norm)) return out;
  const double coef = max_norm / (out.grad_norm + 1e-6);
  if (coef < 1.0) g.mul_(coef);
  // ---- 4. AdamW on the share (torch.optim.AdamW's arithmetic, step for step)
  FlatState& st = state_;
  st.step += 1;
  st.master.mul_(1.0 - lr * s_.weight_decay);
  st.exp_avg.mul_(s_.beta1).add_(g, 1.0 - s_.beta1);
  st.exp_avg_sq.mul_(s_.beta2).addcmul_(g, g, 1.0 - s_.beta2);
  const double bias1 = 1.0 - std::pow(s_.beta1, double(st.step)), bias2 = 1.0 - std::pow(s_.beta2, double(st.step));
  auto denom = (st.exp_avg_sq.sqrt() / std::sqrt(bias2)).add_(s_.eps);
  st.master.addcdiv_(st.exp_avg, denom, -lr / bias1);
  // ---- every rank's updated share into every rank's parameters
  auto padded = torch::zeros({layout_.shard}, st.master.options());
  padded.narrow(0, 0, n).copy_(st.master);
  auto full = dist_->all_gather(padded);  // (W S,)
  for (size_t i = 0; i < params_.size(); ++i)
    params_[i].copy_(full.narrow(0, layout_.offsets[i], layout_.numels[i]).view(params_[i].sizes()));
  out.applied = true;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Checkpoint shards

namespace {

std::string shard_name(int rank, int world) {
  return "shard-" + std::to_string(rank) + "-of-" + std::to_string(world) + ".safetensors";
}

}  // namespace

std::string save_optimizer_shard(const ShardedAdamW& opt, const std::string& dir, int rank) {
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/" + shard_name(rank, opt.layout().world);
  const FlatState& s = opt.state();
  write_tensors(path, {{"master", s.master}, {"exp_avg", s.exp_avg}, {"exp_avg_sq", s.exp_avg_sq}}, torch::kFloat32);
  return file_checksum(path);
}

void save_optimizer_index(const ShardedAdamW& opt, const std::string& dir, const std::vector<std::string>& checksums) {
  const FlatLayout& L = opt.layout();
  nlohmann::json j = {{"format", "grpo_train sharded AdamW"},
                      {"numel", L.total},
                      {"world_size", L.world},
                      {"zero_stage", opt.stage()},
                      {"step", opt.state().step}};
  j["tensors"] = nlohmann::json::array();
  for (size_t i = 0; i < opt.names().size(); ++i) j["tensors"].push_back({opt.names()[i], L.numels[i]});
  j["shards"] = nlohmann::json::array();
  for (int r = 0; r < L.world; ++r)
    j["shards"].push_back({{"file", shard_name(r, L.world)}, {"lo", L.lo(r)}, {"hi", L.hi(r)}, {"sha256", checksums.at(size_t(r))}});
  write_file_atomic(dir + "/optimizer/index.json", json_text(j, 2) + "\n");
}

bool has_sharded_optimizer(const std::string& dir) {
  return file_exists(dir + "/optimizer/index.json");
}

namespace {

// The index, checked against this run's trainable tensors.
nlohmann::json read_index(const std::string& path, const std::vector<std::string>& names, const std::vector<int64_t>& numels) {
  nlohmann::json j = parse_json(read_file(path), path);
  if (!j.is_object() || !j.contains("tensors") || !j.contains("shards") || !j.contains("numel") || !j.contains("step"))
    throw Error(path + ": expected the fields numel, step, tensors and shards");
  const auto& t = j["tensors"];
  bool same = t.is_array() && t.size() == names.size();
  for (size_t i = 0; same && i < names.size(); ++i) same = t[i][0] == names[i] && t[i][1] == numels[i];
  if (!same)
    throw Error(path + ": the optimizer state is of other tensors than this run trains (" + std::to_string(t.size()) + " tensors vs " +
                std::to_string(names.size()) + "): a checkpoint of another run or model");
  return j;
}

}  // namespace

FlatState load_optimizer_range(const std::string& dir, const std::vector<std::string>& names, const std::vector<int64_t>& numels,
                               int64_t lo, int64_t hi) {
  const nlohmann::json index = read_index(dir + "/optimizer/index.json", names, numels);
  FlatState out;
  out.step = index["step"].get<int64_t>();
  out.master = torch::zeros({hi - lo}, torch::kFloat32);
  out.exp_avg = torch::zeros_like(out.master);
  out.exp_avg_sq = torch::zeros_like(out.master);
  int64_t covered = 0;
  for (const auto& sh : index["shards"]) {
    const int64_t a = sh["lo"].get<int64_t>(), b = sh["hi"].get<int64_t>();
    const int64_t from = std::max(a, lo), to = std::min(b, hi);
    if (from >= to) continue;
    const std::string path = dir + "/optimizer/" + sh["file"].get<std::string>();
    if (!file_exists(path)) throw Error(path + ": missing (optimizer/index.json lists it); the checkpoint is incomplete");
    const std::string sum = file_checksum(path);
    if (sum != sh["sha256"].get<std::string>())
      throw Error(path + ": checksum " + sum + " differs from the " + sh["sha256"].get<std::string>() +
                  " recorded in optimizer/index.json: the shard is corrupted or from another save");
    auto f = SafetensorsFile::open(path);
    for (auto [name, dst] :
         {std::pair<const char*, torch::Tensor*>{"master", &out.master}, {"exp_avg", &out.exp_avg}, {"exp_avg_sq", &out.exp_avg_sq}}) {
      const TensorInfo* t = f->find(name);
      if (!t || t->dtype != DType::F32 || t->numel() != b - a)
        throw Error(path + ": tensor '" + std::string(name) + "' missing or not " + std::to_string(b - a) + " fp32 values");
      dst->narrow(0, from - lo, to - from).copy_(tensor_in_file(*f, *t, {b - a}).narrow(0, from - a, to - from));
    }
    covered += to - from;
  }
  if (covered != hi - lo)
    throw Error(dir + "/optimizer/index.json: its shards cover " + std::to_string(covered) + " of the " + std::to_string(hi - lo) +
                " values this rank needs");
  return out;
}

}  // namespace grpo

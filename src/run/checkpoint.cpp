// checkpoint.cpp: checkpoints written, verified and resumed; see checkpoint.h.
#include "grpo/run/checkpoint.h"

#include <unistd.h>

#include <filesystem>
#include <regex>
#include <set>
#include <sstream>

#include "grpo/base/common.h"
#include "grpo/base/safetensors.h"
#include "grpo/model/lora.h"
#include "grpo/model/model_io.h"

namespace fs = std::filesystem;

namespace grpo {

// ---------------------------------------------------------------------------------------------
// Checkpoints

namespace {

const std::regex kCheckpointName(R"(checkpoint-(\d+))");

std::vector<std::pair<int64_t, std::string>> list_checkpoints(const std::string& output_dir) {
  std::vector<std::pair<int64_t, std::string>> out;
  if (!dir_exists(output_dir)) return out;
  for (const auto& e : fs::directory_iterator(output_dir)) {
    std::smatch m;
    std::string name = e.path().filename().string();
    if (e.is_directory() && std::regex_match(name, m, kCheckpointName) && file_exists(e.path().string() + "/trainer_state.json"))
      out.emplace_back(std::stoll(m[1]), e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::string find_latest_checkpoint(const std::string& output_dir) {
  auto all = list_checkpoints(output_dir);
  return all.empty() ? "" : all.back().second;
}

namespace {

// Where the ranks write their optimizer shards before rank 0 moves them into the checkpoint.
std::string optimizer_staging(const std::string& checkpoint_dir) {
  return checkpoint_dir + ".optimizer-staging";
}

// Every file of a checkpoint into the directory `tmp`; trainer_state.json last.
void write_checkpoint_files(GrpoState& st, const std::string& tmp, const std::string& staging, const std::string& model_dir,
                            TrainerState state, const std::vector<std::string>& shard_sums) {
  fs::create_directories(tmp);
  torch::NoGradGuard ng;
  auto dtype = st.policy->output_weight().scalar_type();
  if (st.cfg.lora_rank > 0)
    save_lora_adapter(st.policy, tmp, lora_config(st.cfg), model_dir);  // PEFT's files, not the base
  else
    save_causal_lm(st.policy, tmp, dtype);
  copy_model_side_files(model_dir, tmp);
  if (!st.master.empty()) {  // exact fp32 weights for resuming a bf16/fp16 run
    std::vector<std::pair<std::string, torch::Tensor>> ts;
    for (size_t i = 0; i < st.master.size(); ++i) ts.emplace_back(st.param_names[i], st.master[i]);
    write_tensors(tmp + "/master.safetensors", ts, torch::kFloat32);
  }
  if (failpoint("checkpoint_write")) std::abort();
  if (st.zero) {  // every rank's shard is in the staging directory already: moved in, indexed
    fs::rename(staging, tmp + "/optimizer");
    save_optimizer_index(*st.zero, tmp, shard_sums);
  } else {
    torch::save(*st.optimizer, tmp + "/optimizer.pt");
  }
  if (st.cfg.sync_ref_model && st.ref) save_causal_lm(st.ref, tmp + "/reference", dtype);  // no longer the initial model
  for (const char* f : {"model.safetensors", "adapter_model.safetensors", "optimizer.pt", "optimizer/index.json", "master.safetensors",
                        "reference/model.safetensors"})
    if (file_exists(tmp + "/" + f)) state.checksums[f] = file_checksum(tmp + "/" + f);  // verify_checkpoint checks them
  for (const auto& key : config_key_names())  // the run-defining settings a resume is compared with
    if (!resumable_change(key) && key != "reward_weights") state.config[key] = get_config_value(st.cfg, key);
  state.step = st.step;
  state.total_steps = st.total_steps;
  state.skipped_updates = st.skipped_updates;
  state.data_position = st.data_position;
  write_file_atomic(tmp + "/trainer_state.json", trainer_state_text(state));  // written last: marks the dir complete
}

}  // namespace

std::vector<std::string> save_optimizer_shards(GrpoState& st, const std::string& output_dir) {
  Dist& dist = *st.dist;
  const std::string staging = optimizer_staging(output_dir + "/checkpoint-" + std::to_string(st.step));
  if (dist.is_main()) fs::remove_all(staging);
  dist.barrier();
  const std::string sum = save_optimizer_shard(*st.zero, staging, dist.rank());
  return dist.all_gather(sum);  // every rank's file written before rank 0 moves the directory
}

std::string save_checkpoint(GrpoState& st, const std::string& output_dir, const std::string& model_dir, const TrainerState& record,
                            const std::vector<std::string>& shard_sums) {
  const std::string final_dir = output_dir + "/checkpoint-" + std::to_string(st.step);
  const std::string tmp = final_dir + ".tmp-" + std::to_string(::getpid());
  fs::remove_all(tmp);
  try {
    write_checkpoint_files(st, tmp, optimizer_staging(final_dir), model_dir, record, shard_sums);
  } catch (const std::exception& e) {  // disk full, a file-size limit, a permission: the last good checkpoint stays
    std::error_code ec;
    fs::remove_all(tmp, ec);
    const std::string last = find_latest_checkpoint(output_dir);
    throw Error("saving " + final_dir + " failed: " + error_text(e) + "; " +
                (last.empty() ? std::string("no earlier checkpoint exists")
                              : "the last complete checkpoint, " + last + ", is intact: free space, then --resume auto"));
  }
  // Swap into place; an older directory of the same name (a re-save) is replaced only now.
  if (dir_exists(final_dir)) {
    const std::string old = final_dir + ".old-" + std::to_string(::getpid());
    fs::rename(final_dir, old);
    fs::rename(tmp, final_dir);
    fs::remove_all(old);
  } else {
    fs::rename(tmp, final_dir);
  }
  // save_total_limit: drop the oldest complete checkpoints, never the one just written.
  if (st.cfg.save_total_limit > 0) {
    auto all = list_checkpoints(output_dir);
    for (size_t i = 0; i + st.cfg.save_total_limit < all.size(); ++i)
      if (all[i].second != final_dir) fs::remove_all(all[i].second);
  }
  return final_dir;
}

bool resumable_change(const std::string& key) {
  static const std::set<std::string> free = {"max_steps", "num_epochs", "eval_every", "eval_limit", "eval_samples", "eval_temperature",
                                             "save_steps", "save_total_limit", "log_samples_every", "output_dir", "device", "decode_mode",
                                             "attention", "reward_timeout", "reward_restarts", "eval_data", "dist_backend",
                                             "dist_timeout_s", "zero_stage",
                                             // how a step is split into micro-batches: memory, not the step's
                                             // math (except bnpo's and top_entropy_quantile's per-micro-batch
                                             // statistics), and it changes with the world size
                                             "grad_accum"};
  return free.count(key) > 0;
}

std::string config_differences(const std::map<std::string, std::string>& saved, const TrainConfig& now) {
  std::string out;
  for (const auto& key : config_key_names()) {
    if (resumable_change(key) || !saved.count(key)) continue;
    const std::string value = get_config_value(now, key), was = saved.at(key);
    if (value != was) out += "\n  " + key + ": " + was + " -> " + value;
  }
  return out;
}

void verify_checkpoint(const std::string& dir) {
  for (const auto& [f, want] : read_trainer_state(dir).checksums) {
    const std::string file = dir + "/" + f;
    if (!file_exists(file)) throw Error(file + ": missing (trainer_state.json records it); the checkpoint is incomplete");
    const std::string got = file_checksum(file);
    if (got != want)
      throw Error(file + ": checksum " + got + " differs from the " + want +
                  " recorded when it was saved: the file is corrupted; resume from another checkpoint");
  }
}

namespace {

void load_optimizer_pt(torch::optim::AdamW& opt, const std::string& dir) {
  if (!file_exists(dir + "/optimizer.pt")) throw Error(dir + ": missing optimizer.pt");
  try {
    torch::load(opt, dir + "/optimizer.pt");
  } catch (const std::exception& e) {  // truncated or not ours (a checkpoint without checksums)
    throw Error(dir + "/optimizer.pt: cannot be read as this run's optimizer state (" + error_text(e) + ")");
  }
}

// AdamW's per-tensor state key: the TensorImpl's address, as text in LibTorch 1.x, the pointer in 2.x.
template <class Map>
typename Map::key_type adam_key(const Map&, const torch::Tensor& p) {
  if constexpr (std::is_same_v<typename Map::key_type, std::string>) {
    std::ostringstream o;
    o << p.unsafeGetTensorImpl();
    return o.str();
  } else {
    return p.unsafeGetTensorImpl();
  }
}

// Tensor `name` of a checkpoint's master.safetensors, checked to be `numel` fp32 values.
const TensorInfo& master_tensor(const SafetensorsFile& f, const std::string& name, int64_t numel) {
  const TensorInfo* t = f.find(name);
  if (!t || t->dtype != DType::F32 || t->numel() != numel)
    throw Error(f.path() + ": tensor '" + name + "' missing or of the wrong shape/dtype");
  return *t;
}

// A zero_stage 0 checkpoint (optimizer.pt, master.safetensors or the fp32 weights) as the flat range [lo, hi).
FlatState flat_from_optimizer_pt(GrpoState& st, const std::string& dir, int64_t lo, int64_t hi) {
  std::vector<torch::Tensor> shapes;
  for (const auto& p : st.params) shapes.push_back(torch::zeros(p.sizes(), torch::kFloat32));
  torch::optim::AdamW opt(shapes, torch::optim::AdamWOptions(st.cfg.learning_rate));
  load_optimizer_pt(opt, dir);
  std::vector<torch::Tensor> m, v, w;
  FlatState out;
  std::unique_ptr<SafetensorsFile> masters =
      file_exists(dir + "/master.safetensors") ? SafetensorsFile::open(dir + "/master.safetensors") : nullptr;
  for (size_t i = 0; i < shapes.size(); ++i) {
    auto it = opt.state().find(adam_key(opt.state(), shapes[i]));
    if (it != opt.state().end()) {
      auto& s = static_cast<torch::optim::AdamWParamState&>(*it->second);
      m.push_back(s.exp_avg().reshape({-1}));
      v.push_back(s.exp_avg_sq().reshape({-1}));
      out.step = s.step();
    } else {  // no step taken yet
      m.push_back(shapes[i].reshape({-1}));
      v.push_back(shapes[i].reshape({-1}));
    }
    w.push_back(masters
                    ? tensor_in_file(*masters, master_tensor(*masters, st.param_names[i], shapes[i].numel()), {shapes[i].numel()}).clone()
                    : st.params[i].detach().reshape({-1}).to(torch::kCPU, torch::kFloat32));
  }
  auto slice = [&](const std::vector<torch::Tensor>& parts) { return torch::cat(parts).narrow(0, lo, hi - lo).clone(); };
  out.master = slice(w);
  out.exp_avg = slice(m);
  out.exp_avg_sq = slice(v);
  return out;
}

// The whole flat state into zero_stage 0's AdamW (and the fp32 masters, when the model has them).
void optimizer_from_flat(GrpoState& st, const FlatState& fs) {
  torch::NoGradGuard ng;
  auto trainable = st.trainable();
  auto& state = st.optimizer->state();
  int64_t off = 0;
  for (size_t i = 0; i < trainable.size(); ++i) {
    const auto& p = trainable[i];
    auto piece = [&](const torch::Tensor& flat) { return flat.narrow(0, off, p.numel()).view(p.sizes()).to(p.device()).clone(); };
    auto s = std::make_unique<torch::optim::AdamWParamState>();
    s->step(fs.step);
    s->exp_avg(piece(fs.exp_avg));
    s->exp_avg_sq(piece(fs.exp_avg_sq));
    state[adam_key(state, p)] = std::move(s);
    if (!st.master.empty()) st.master[i].copy_(piece(fs.master));
    off += p.numel();
  }
}

}  // namespace

TrainerState load_checkpoint_state(GrpoState& st, const std::string& dir) {
  TrainerState state = read_trainer_state(dir);
  st.step = state.step;
  st.skipped_updates = state.skipped_updates;
  st.data_position = state.data_position >= 0 ? state.data_position : st.step * int64_t(st.cfg.prompts_per_step);
  if (st.zero) {  // this rank's share, from the shards (any world size) or a whole optimizer.pt
    const FlatLayout& L = st.zero->layout();
    const int64_t lo = L.lo(st.dist->rank()), hi = L.hi(st.dist->rank());
    FlatState fs =
        has_sharded_optimizer(dir) ? load_optimizer_range(dir, st.param_names, L.numels, lo, hi) : flat_from_optimizer_pt(st, dir, lo, hi);
    auto& mine = st.zero->state();
    const auto dev = mine.master.device();
    mine = {fs.master.to(dev), fs.exp_avg.to(dev), fs.exp_avg_sq.to(dev), fs.step};
    return state;
  }
  if (has_sharded_optimizer(dir)) {  // a sharded checkpoint resumed with zero_stage 0: the whole state
    const FlatLayout L(st.params, 1);
    optimizer_from_flat(st, load_optimizer_range(dir, st.param_names, L.numels, 0, L.total));
    return state;
  }
  load_optimizer_pt(*st.optimizer, dir);
  if (!st.master.empty()) {
    if (!file_exists(dir + "/master.safetensors")) throw Error(dir + ": missing master.safetensors for a non-fp32 model");
    auto f = SafetensorsFile::open(dir + "/master.safetensors");
    torch::NoGradGuard ng;
    for (size_t i = 0; i < st.master.size(); ++i)
      st.master[i].copy_(tensor_in_file(*f, master_tensor(*f, st.param_names[i], st.master[i].numel()), st.master[i].sizes()));
  }
  return state;
}

std::string resume_point(const TrainConfig& cfg, const std::string& resume, bool allow_config_change, const ModelConfig& mc) {
  const std::string& out = cfg.output_dir;
  std::string resume_dir;
  if (resume == "auto") {
    resume_dir = find_latest_checkpoint(out);
    if (resume_dir.empty()) throw Error("--resume auto: no checkpoint-<step> directory in output_dir '" + out + "'");
  } else if (!resume.empty()) {
    resume_dir = resume;
    if (!file_exists(resume_dir + "/trainer_state.json"))
      throw Error("--resume " + resume_dir + ": not a checkpoint directory (no trainer_state.json)");
  } else if (const std::string existing = find_latest_checkpoint(out); !existing.empty()) {
    throw Error("output_dir '" + out + "' already holds " + existing +
                "; pass --resume auto to continue that run, or choose another output_dir");
  } else {
    return "";  // a fresh run
  }
  // A LoRA checkpoint is an adapter (PEFT's files) over model_path: its shapes are checked as it loads.
  ModelConfig rc = is_lora_adapter_dir(resume_dir) ? mc : ModelConfig::from_dir(resume_dir);
  if (rc.n_vocab != mc.n_vocab || rc.n_embd != mc.n_embd || rc.n_layer != mc.n_layer || rc.n_head != mc.n_head ||
      rc.n_kv_head != mc.n_kv_head || rc.n_ff != mc.n_ff || rc.head_dim != mc.head_dim)
    throw Error("--resume " + resume_dir + ": the checkpoint is a different model shape (hidden " + std::to_string(rc.n_embd) +
                ", layers " + std::to_string(rc.n_layer) + ", vocab " + std::to_string(rc.n_vocab) + ") than model_path " + cfg.model_path +
                " (hidden " + std::to_string(mc.n_embd) + ", layers " + std::to_string(mc.n_layer) + ", vocab " +
                std::to_string(mc.n_vocab) + ")");
  verify_checkpoint(resume_dir);  // a corrupted file is named before anything is loaded
  const std::string diff = config_differences(read_trainer_state(resume_dir).config, cfg);
  if (!diff.empty() && !allow_config_change)
    throw Error("--resume " + resume_dir + ": these settings differ from the run the checkpoint belongs to (checkpoint -> now):" + diff +
                "\n  resume with the checkpoint's values, or pass --allow-config-change to continue with the new ones");
  if (!diff.empty()) std::printf("Resuming with changed settings (--allow-config-change):%s\n", diff.c_str());
  return resume_dir;
}

}  // namespace grpo

// tokenizer.cpp: Hugging Face tokenizer.json (BPE) in C++, stage for stage as the Rust
// `tokenizers` crate runs it; see tokenizer.h for the pipeline and the one deliberate departure.
// This file holds the BPE model, the added tokens and the assembly of the stages (tokenizer_stages.h).
// It does not include torch, so the fuzz target can build it alone.
#include "grpo/tokenizer/tokenizer.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <queue>
#include <thread>
#include <unordered_map>

#include "grpo/base/common.h"
#include "tokenizer_stages.h"

namespace grpo {

using json = nlohmann::json;
using namespace hf;  // the pipeline's stages (tokenizer_stages.h)

namespace {

// ---------------------------------------------------------------------------------------------
// Word cache: sharded so encode_batch threads rarely contend.

class WordCache {
 public:
  bool get(const std::string& word, std::vector<int32_t>& out) const {
    const Shard& s = shard(word);
    std::lock_guard<std::mutex> lock(s.mu);
    auto it = s.map.find(word);
    if (it == s.map.end()) return false;
    out.insert(out.end(), it->second.begin(), it->second.end());
    return true;
  }
  void put(const std::string& word, const int32_t* ids, size_t n) const {
    if (word.size() > kMaxWordBytes) return;
    Shard& s = shard(word);
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.map.size() >= kMaxPerShard) s.map.clear();  // bounded memory on adversarial input
    s.map.emplace(word, std::vector<int32_t>(ids, ids + n));
  }

 private:
  static constexpr size_t kShards = 64, kMaxPerShard = 16384, kMaxWordBytes = 256;
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, std::vector<int32_t>> map;
  };
  Shard& shard(const std::string& w) const { return shards_[std::hash<std::string>{}(w) % kShards]; }
  mutable std::array<Shard, kShards> shards_;
};

struct AddedToken {
  int32_t id;
  std::string content;
  bool special, lstrip, rstrip, single_word;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// HfTokenizer::Impl

struct HfTokenizer::Impl {
  std::string name;
  std::unordered_map<std::string, int32_t> vocab;
  std::vector<std::string> id_to_str;  // vocab + added tokens, by id
  std::vector<uint8_t> special;        // by id
  // merges: (left id, right id) -> (rank, merged id)
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges;
  std::optional<int32_t> unk_id;
  bool byte_fallback = false, fuse_unk = false, ignore_merges = false;
  std::string continuing_subword_prefix, end_of_word_suffix;
  std::array<int32_t, 256> byte_ids{};  // <0xNN> ids for byte_fallback (-1 if absent)
  std::vector<Normalizer> normalizers;
  std::vector<PreTokenizer> pre_tokenizers;
  std::vector<Decoder> decoders;
  std::vector<AddedToken> added;
  std::array<std::vector<size_t>, 256> added_by_first_byte;  // indices into added, longest first
  std::unordered_map<std::string, int32_t> added_by_content;
  WordCache cache;

  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }

  // ---- BPE of one pre-tokenized word (HF word.rs: lowest rank first, leftmost on ties)
  void bpe(const std::string& word, std::vector<int32_t>& out) const {
    if (cache.get(word, out)) return;
    const size_t out_start = out.size();
    if (ignore_merges) {
      auto it = vocab.find(word);
      if (it != vocab.end()) {
        out.push_back(it->second);
        cache.put(word, &out[out_start], 1);
        return;
      }
    }
    struct Sym {
      int32_t id;
      int prev, next;
      bool alive;
    };
    std::vector<Sym> syms;
    auto chars = utf8_chars(word);
    for (size_t ci = 0; ci < chars.size(); ++ci) {
      auto [off, len] = chars[ci];
      std::string piece = word.substr(off, len);
      if (ci > 0 && !continuing_subword_prefix.empty()) piece = continuing_subword_prefix + piece;
      if (ci + 1 == chars.size() && !end_of_word_suffix.empty()) piece += end_of_word_suffix;
      auto it = vocab.find(piece);
      auto push = [&](int32_t id) { syms.push_back({id, int(syms.size()) - 1, int(syms.size()) + 1, true}); };
      if (it != vocab.end()) {
        push(it->second);
        continue;
      }
      bool fell_back = false;
      if (byte_fallback) {
        bool all = true;
        for (size_t k = 0; k < len; ++k) all = all && byte_ids[static_cast<unsigned char>(word[off + k])] >= 0;
        if (all) {
          for (size_t k = 0; k < len; ++k) push(byte_ids[static_cast<unsigned char>(word[off + k])]);
          fell_back = true;
        }
      }
      if (fell_back) continue;
      if (!unk_id) throw Error(name + ": cannot encode " + quote(piece) + ": not in the vocabulary and no unk_token");
      if (fuse_unk && !syms.empty() && syms.back().id == *unk_id) continue;
      push(*unk_id);
    }
    if (!syms.empty()) syms.back().next = -1;

    struct Cand {
      int32_t rank;
      int pos;
      int32_t left, right, merged;
      bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> queue;
    auto consider = [&](int pos) {
      if (pos < 0) return;
      int nx = syms[pos].next;
      if (nx < 0) return;
      auto it = merges.find(pair_key(syms[pos].id, syms[nx].id));
      if (it != merges.end()) queue.push({it->second.first, pos, syms[pos].id, syms[nx].id, it->second.second});
    };
    for (int i = 0; i + 1 < static_cast<int>(syms.size()); ++i) consider(i);
    while (!queue.empty()) {
      Cand c = queue.top();
      queue.pop();
      Sym& s = syms[c.pos];
      if (!s.alive || s.id != c.left || s.next < 0 || syms[s.next].id != c.right) continue;  // stale
      Sym& r = syms[s.next];
      r.alive = false;
      s.id = c.merged;
      s.next = r.next;
      if (r.next >= 0) syms[r.next].prev = c.pos;
      consider(s.prev);
      consider(c.pos);
    }
    for (const auto& s : syms)
      if (s.alive) out.push_back(s.id);
    cache.put(word, out.data() + out_start, out.size() - out_start);
  }

  // ---- added tokens: leftmost-longest match
  // Returns the next match at or after `from`: (begin, end, index); begin == npos if none.
  // `plain`: byte ranges where special tokens do not match (encode_guarded).
  std::tuple<size_t, size_t, size_t> next_added(std::string_view text, size_t from, bool match_special,
                                                const std::vector<std::pair<size_t, size_t>>* plain = nullptr) const {
    size_t r = 0;  // the first plain range that may still hold position i
    for (size_t i = from; i < text.size(); ++i) {
      while (plain && r < plain->size() && (*plain)[r].second <= i) ++r;
      for (size_t k : added_by_first_byte[static_cast<unsigned char>(text[i])]) {
        const AddedToken& a = added[k];
        if (a.special && !match_special) continue;
        if (a.special && plain && r < plain->size() && (*plain)[r].first < i + a.content.size()) continue;
        if (text.compare(i, a.content.size(), a.content) != 0) continue;
        size_t b = i, e = i + a.content.size();
        if (a.single_word) {
          auto word_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
          if ((b > 0 && word_char(text[b - 1])) || (e < text.size() && word_char(text[e]))) continue;
        }
        if (a.lstrip)
          while (b > from && std::isspace(static_cast<unsigned char>(text[b - 1]))) --b;
        if (a.rstrip)
          while (e < text.size() && std::isspace(static_cast<unsigned char>(text[e]))) ++e;
        return {b, e, k};
      }
    }
    return {std::string_view::npos, 0, 0};
  }

  // The text between added-token matches is encoded as one segment each (HF's split on added tokens).
  std::vector<int32_t> encode_all(std::string_view text, bool match_special, const std::vector<std::pair<size_t, size_t>>* plain) const {
    std::vector<int32_t> out;
    out.reserve(text.size() / 3 + 4);
    size_t pos = 0;
    bool first = true;
    while (pos <= text.size()) {
      auto [b, e, k] = next_added(text, pos, match_special, plain);
      size_t seg_end = b == std::string_view::npos ? text.size() : b;
      if (seg_end > pos) encode_text(text.substr(pos, seg_end - pos), first, out);
      first = false;
      if (b == std::string_view::npos) break;
      out.push_back(added[k].id);
      pos = e;
    }
    return out;
  }

  void encode_text(std::string_view segment, bool first_segment, std::vector<int32_t>& out) const {
    std::string normalized = apply_normalizers(utf8_lossy(segment), normalizers);
    for (const auto& word : apply_pre_tokenizers(std::move(normalized), pre_tokenizers, first_segment)) bpe(word, out);
  }
};

// ---------------------------------------------------------------------------------------------
// Loading

std::unique_ptr<HfTokenizer> HfTokenizer::from_file(const std::string& path) {
  return from_json(read_file(path), path);
}

// ---- tokenizer.json's parts, read into the Impl (errors name the file and the field)
namespace {

using Impl = HfTokenizer::Impl;

// model.vocab: token -> id; returns the largest id.
int32_t read_vocab(Impl& state, const json& model, const Ctx& ctx) {
  Impl* impl = &state;
  const json& vocab = field(model, "vocab", ctx, "model");
  if (!vocab.is_object()) ctx.fail("model.vocab: expected an object of token -> id");
  int32_t max_id = -1;
  for (const auto& [tok, id] : vocab.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX)
      ctx.fail("model.vocab[" + quote(tok) + "]: expected a non-negative integer id, found " + json_text(id));
    impl->vocab.emplace(tok, id.get<int32_t>());
    max_id = std::max(max_id, id.get<int32_t>());
  }
  return max_id;
}

// added_tokens, and the id -> string and special tables over every id up to max_id.
void read_added_tokens(Impl& state, const json& root, const Ctx& ctx, int32_t max_id) {
  Impl* impl = &state;
  if (root.contains("added_tokens") && root["added_tokens"].is_array()) {
    const json& list = root["added_tokens"];
    for (size_t i = 0; i < list.size(); ++i) {
      std::string where = "added_tokens[" + std::to_string(i) + "]";
      const json& a = list[i];
      const json& idj = field(a, "id", ctx, where);
      if (!idj.is_number_integer() || idj.get<int64_t>() < 0) ctx.fail(where + ".id: expected a non-negative integer");
      AddedToken t{idj.get<int32_t>(),
                   str_field(a, "content", ctx, where),
                   bool_field(a, "special", false),
                   bool_field(a, "lstrip", false),
                   bool_field(a, "rstrip", false),
                   bool_field(a, "single_word", false)};
      if (t.content.empty()) ctx.fail(where + ".content: empty");
      max_id = std::max(max_id, t.id);
      impl->added_by_content[t.content] = t.id;
      impl->added.push_back(std::move(t));
    }
  }
  impl->id_to_str.assign(static_cast<size_t>(max_id + 1), std::string());
  impl->special.assign(static_cast<size_t>(max_id + 1), 0);
  for (const auto& [tok, id] : impl->vocab) impl->id_to_str[id] = tok;
  for (const auto& a : impl->added) {
    impl->id_to_str[a.id] = a.content;
    impl->special[a.id] = a.special;
  }
  for (size_t k = 0; k < impl->added.size(); ++k)
    impl->added_by_first_byte[static_cast<unsigned char>(impl->added[k].content[0])].push_back(k);
  for (auto& v : impl->added_by_first_byte)
    std::stable_sort(v.begin(), v.end(), [&](size_t a, size_t b) { return impl->added[a].content.size() > impl->added[b].content.size(); });
}

// model.merges: "a b" strings or ["a", "b"] pairs, each of known tokens whose join is a token.
void read_merges(Impl& state, const json& model, const Ctx& ctx) {
  Impl* impl = &state;
  const json& merges = field(model, "merges", ctx, "model");
  if (!merges.is_array()) ctx.fail("model.merges: expected an array");
  impl->merges.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const json& m = merges[i];
    std::string a, b;
    if (m.is_string()) {
      std::string s = m.get<std::string>();
      size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        ctx.fail("model.merges[" + std::to_string(i) + "]: expected \"left right\", found " + quote(s));
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      a = m[0].get<std::string>();
      b = m[1].get<std::string>();
    } else {
      ctx.fail("model.merges[" + std::to_string(i) + "]: expected \"a b\" or [\"a\", \"b\"], found " + json_text(m));
    }
    auto ia = impl->vocab.find(a), ib = impl->vocab.find(b), im = impl->vocab.find(a + b);
    std::string where = "model.merges[" + std::to_string(i) + "] (" + quote(a) + " + " + quote(b) + ")";
    if (ia == impl->vocab.end()) ctx.fail(where + ": refers to unknown token " + quote(a));
    if (ib == impl->vocab.end()) ctx.fail(where + ": refers to unknown token " + quote(b));
    if (im == impl->vocab.end()) ctx.fail(where + ": the merged token " + quote(a + b) + " is not in the vocabulary");
    impl->merges.emplace(Impl::pair_key(ia->second, ib->second), std::make_pair(int32_t(i), im->second));
  }
}

// The BPE model's options (unk, byte fallback, prefixes/suffixes) and the <0xNN> byte ids.
void read_model_options(Impl& state, const json& model, const Ctx& ctx) {
  Impl* impl = &state;
  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    std::string unk = model["unk_token"];
    auto it = impl->vocab.find(unk);
    if (it == impl->vocab.end()) ctx.fail("model.unk_token: " + quote(unk) + " is not in the vocabulary");
    impl->unk_id = it->second;
  }
  impl->byte_fallback = bool_field(model, "byte_fallback", false);
  impl->fuse_unk = bool_field(model, "fuse_unk", false);
  impl->ignore_merges = bool_field(model, "ignore_merges", false);
  if (model.contains("continuing_subword_prefix") && model["continuing_subword_prefix"].is_string())
    impl->continuing_subword_prefix = model["continuing_subword_prefix"];
  if (model.contains("end_of_word_suffix") && model["end_of_word_suffix"].is_string())
    impl->end_of_word_suffix = model["end_of_word_suffix"];
  if (model.contains("dropout") && model["dropout"].is_number() && model["dropout"].get<double>() > 0)
    ctx.fail("model.dropout: BPE dropout is not supported (training-time randomness)");
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    auto it = impl->vocab.find(buf);
    impl->byte_ids[b] = it == impl->vocab.end() ? -1 : it->second;
  }
}

json parse_tokenizer_json(const std::string& text, const Ctx& ctx) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::parse_error& e) {
    std::string why = e.byte >= text.size() ? "truncated or incomplete JSON" : "invalid JSON";
    ctx.fail(why + " at byte " + std::to_string(e.byte) + " (" + e.what() + ")");
  } catch (const json::exception& e) {
    ctx.fail(std::string("invalid JSON (") + e.what() + ")");
  }
  if (!root.is_object()) ctx.fail("expected a JSON object at the top level, found " + std::string(root.type_name()));
  return root;
}

}  // namespace

std::unique_ptr<HfTokenizer> HfTokenizer::from_json(const std::string& text, const std::string& name) {
  Ctx ctx{name};
  const json root = parse_tokenizer_json(text, ctx);
  auto impl = std::make_unique<Impl>();
  impl->name = name;
  try {
    if (!root.contains("model") || root["model"].is_null()) ctx.fail("missing field \"model\"");
    const json& model = root["model"];
    std::string type = model.contains("type") && model["type"].is_string() ? model["type"].get<std::string>() : "BPE";
    if (type != "BPE") ctx.fail("model.type: unsupported model type \"" + type + "\" (supported: BPE)");
    const int32_t max_id = read_vocab(*impl, model, ctx);
    read_added_tokens(*impl, root, ctx, max_id);
    read_merges(*impl, model, ctx);
    read_model_options(*impl, model, ctx);
    // the pipeline's stages
    parse_normalizer(root.value("normalizer", json()), ctx, "normalizer", impl->normalizers);
    parse_pre_tokenizer(root.value("pre_tokenizer", json()), ctx, "pre_tokenizer", impl->pre_tokenizers);
    parse_decoder(root.value("decoder", json()), ctx, "decoder", impl->decoders);
  } catch (const json::exception& e) {
    ctx.fail(std::string("unexpected structure: ") + e.what());
  }
  return std::unique_ptr<HfTokenizer>(new HfTokenizer(std::move(impl)));
}

HfTokenizer::HfTokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HfTokenizer::~HfTokenizer() = default;

// ---------------------------------------------------------------------------------------------
// Encode / decode

std::vector<int32_t> HfTokenizer::encode(std::string_view text, bool match_special) const {
  return impl_->encode_all(text, match_special, nullptr);
}

std::vector<int32_t> HfTokenizer::encode_guarded(std::string_view text, const std::vector<std::pair<size_t, size_t>>& plain) const {
  return impl_->encode_all(text, /*match_special=*/true, &plain);
}

std::string HfTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    if (id < 0 || static_cast<size_t>(id) >= impl_->id_to_str.size())
      throw Error(impl_->name + ": token id " + std::to_string(id) + " out of range [0, " + std::to_string(impl_->id_to_str.size()) + ")");
    if (skip_special && impl_->special[id]) continue;
    tokens.push_back(impl_->id_to_str[id]);
  }
  if (impl_->decoders.empty()) {
    std::string joined;
    for (size_t i = 0; i < tokens.size(); ++i) joined += (i ? " " : "") + tokens[i];
    return utf8_lossy(joined);
  }
  std::string out;
  for (const auto& t : apply_decoders(std::move(tokens), impl_->decoders)) out += t;
  return utf8_lossy(out);
}

std::optional<int32_t> HfTokenizer::token_to_id(std::string_view token) const {
  std::string t(token);
  if (auto it = impl_->added_by_content.find(t); it != impl_->added_by_content.end()) return it->second;
  if (auto it = impl_->vocab.find(t); it != impl_->vocab.end()) return it->second;
  return std::nullopt;
}

std::string HfTokenizer::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= impl_->id_to_str.size())
    throw Error(impl_->name + ": token id " + std::to_string(id) + " out of range");
  return impl_->id_to_str[id];
}

size_t HfTokenizer::vocab_size() const {
  return impl_->id_to_str.size();
}

bool HfTokenizer::is_special(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < impl_->special.size() && impl_->special[id];
}

// ---------------------------------------------------------------------------------------------
// Batch encoding

std::vector<int32_t> Tokenizer::encode_guarded(std::string_view text, const std::vector<std::pair<size_t, size_t>>& plain) const {
  std::vector<int32_t> out;
  size_t pos = 0;
  for (const auto& [b, e] : plain) {
    for (int32_t id : encode(text.substr(pos, b - pos), /*match_special=*/true)) out.push_back(id);
    for (int32_t id : encode(text.substr(b, e - b), /*match_special=*/false)) out.push_back(id);
    pos = e;
  }
  for (int32_t id : encode(text.substr(pos), /*match_special=*/true)) out.push_back(id);
  return out;
}

std::vector<int32_t> encode_rendered(const Tokenizer& tok, const jinja::Text& text) {
  std::vector<std::pair<size_t, size_t>> plain;
  for (const jinja::Span& sp : text.spans) plain.emplace_back(sp.begin, sp.end);
  return tok.encode_guarded(text.s, plain);
}

std::vector<std::vector<int32_t>> Tokenizer::encode_batch(const std::vector<std::string>& texts, bool match_special, int n_threads) const {
  std::vector<std::vector<int32_t>> out(texts.size());
  size_t n = n_threads > 0 ? static_cast<size_t>(n_threads) : std::max(1u, std::thread::hardware_concurrency());
  n = std::min(n, std::max<size_t>(1, texts.size() / 16));
  if (n <= 1) {
    for (size_t i = 0; i < texts.size(); ++i) out[i] = encode(texts[i], match_special);
    return out;
  }
  std::vector<std::thread> threads;
  std::exception_ptr error;
  std::mutex error_mu;
  for (size_t t = 0; t < n; ++t)
    threads.emplace_back([&, t] {
      try {
        for (size_t i = t; i < texts.size(); i += n) out[i] = encode(texts[i], match_special);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mu);
        error = std::current_exception();
      }
    });
  for (auto& th : threads) th.join();
  if (error) std::rethrow_exception(error);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Streaming: decode a growing window and emit only text that no longer ends in U+FFFD (a cut
// multi-byte character); the window's start advances so the work per token stays constant.

std::string IncrementalDecoder::push(int32_t id) {
  ids_.push_back(id);
  std::vector<int32_t> prefix(ids_.begin() + prefix_, ids_.begin() + read_);
  std::vector<int32_t> all(ids_.begin() + prefix_, ids_.end());
  std::string prefix_text = tok_.decode(prefix, skip_special_);
  std::string new_text = tok_.decode(all, skip_special_);
  if (new_text.size() > prefix_text.size() && !ends_with(new_text, kReplacementChar) && starts_with(new_text, prefix_text)) {
    std::string delta = new_text.substr(prefix_text.size());
    prefix_ = read_;
    read_ = ids_.size();
    return delta;
  }
  return "";
}

std::string IncrementalDecoder::flush() {
  std::vector<int32_t> prefix(ids_.begin() + prefix_, ids_.begin() + read_);
  std::vector<int32_t> all(ids_.begin() + prefix_, ids_.end());
  std::string prefix_text = tok_.decode(prefix, skip_special_), all_text = tok_.decode(all, skip_special_);
  prefix_ = read_ = ids_.size();
  return all_text.size() > prefix_text.size() ? all_text.substr(prefix_text.size()) : "";
}

}  // namespace grpo

// ---------------------------------------------------------------------------------------------
// Model directories

namespace grpo {

namespace {
const char* const kQwenSplit =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
}  // namespace

std::string byte_level_tokenizer_json(const std::vector<std::pair<std::string, std::string>>& merges,
                                      const std::vector<std::string>& extra) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_level().byte_to_utf8[b]] = b;
  json added = json::array();
  const char* specials[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
  for (int i = 0; i < 3; ++i)
    added.push_back({{"id", 256 + i},
                     {"content", specials[i]},
                     {"special", true},
                     {"normalized", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"single_word", false}});
  int next = 259;
  for (const auto& t : extra)
    added.push_back({{"id", next++},
                     {"content", t},
                     {"special", false},
                     {"normalized", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"single_word", false}});
  json merge_list = json::array();
  for (const auto& [a, b] : merges) {
    if (!vocab.contains(a + b)) vocab[a + b] = next++;
    merge_list.push_back(a + " " + b);
  }
  json pre = merges.empty() ? json{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", true}}
                            : json{{"type", "Sequence"},
                                   {"pretokenizers",
                                    {{{"type", "Split"}, {"pattern", {{"Regex", kQwenSplit}}}, {"behavior", "Isolated"}, {"invert", false}},
                                     {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}}}};
  json j = {{"version", "1.0"},
            {"added_tokens", added},
            {"normalizer", merges.empty() ? json(nullptr) : json{{"type", "NFC"}}},
            {"pre_tokenizer", pre},
            {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", true}}},
            {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merge_list}}}};
  return json_text(j);
}

std::vector<std::pair<std::string, std::string>> train_bpe_merges(const std::vector<std::string>& texts, int n_merges) {
  // Word frequencies after the same pre-tokenization the tokenizer will apply.
  Regex split(kQwenSplit, "train_bpe_merges");
  std::map<std::string, int64_t> freq;
  for (const auto& t : texts) {
    std::string s = nfc(t);
    std::vector<std::string> pieces;
    split_by(s, split.find_all(s), PreTokenizer::Isolated, pieces);
    for (const auto& p : pieces) {
      std::string mapped;
      for (unsigned char c : p) mapped += byte_level().byte_to_utf8[c];
      ++freq[mapped];
    }
  }
  std::vector<std::pair<std::vector<std::string>, int64_t>> words;  // symbols, count
  for (const auto& [w, n] : freq) {
    std::vector<std::string> syms;
    for (auto [off, len] : utf8_chars(w)) syms.push_back(w.substr(off, len));
    words.emplace_back(std::move(syms), n);
  }
  std::vector<std::pair<std::string, std::string>> merges;
  for (int m = 0; m < n_merges; ++m) {
    std::map<std::pair<std::string, std::string>, int64_t> pairs;
    for (const auto& [syms, n] : words)
      for (size_t i = 0; i + 1 < syms.size(); ++i) pairs[{syms[i], syms[i + 1]}] += n;
    if (pairs.empty()) break;
    auto best = pairs.begin();
    for (auto it = pairs.begin(); it != pairs.end(); ++it)
      if (it->second > best->second) best = it;  // map order breaks ties
    if (best->second < 2) break;
    const auto [a, b] = best->first;
    merges.emplace_back(a, b);
    for (auto& [syms, n] : words) {
      std::vector<std::string> out;
      for (size_t i = 0; i < syms.size(); ++i) {
        if (i + 1 < syms.size() && syms[i] == a && syms[i + 1] == b) {
          out.push_back(a + b);
          ++i;
        } else {
          out.push_back(syms[i]);
        }
      }
      syms = std::move(out);
    }
  }
  return merges;
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  if (file_exists(path)) {
    if (ends_with(path, ".model")) return SentencePieceTokenizer::from_file(path);
    return HfTokenizer::from_file(path);
  }
  if (!dir_exists(path)) throw Error(path + ": no such tokenizer file or model directory");
  if (file_exists(path + "/tokenizer.json")) return HfTokenizer::from_file(path + "/tokenizer.json");
  if (file_exists(path + "/tokenizer.model")) return SentencePieceTokenizer::from_file(path + "/tokenizer.model");
  throw Error(path + ": no tokenizer.json or tokenizer.model in the model directory");
}

}  // namespace grpo

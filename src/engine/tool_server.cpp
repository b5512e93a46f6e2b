// tool_server.cpp: answering tool calls in a rollout; see tool_server.h.
#include "grpo/engine/tool_server.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "grpo/base/common.h"
#include "grpo/rewards/reward.h"

namespace grpo {

// ---------------------------------------------------------------------------------------------
// tool_command

std::vector<std::string> parse_tool_reply(const std::string& line, const std::vector<ProgramCall>& calls, const std::string& who) {
  auto bad = [&](const std::string& what) { return Error(who + ": bad reply (" + what + "): " + quote_reply(line)); };
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception&) {
    throw bad("not JSON");
  }
  if (!j.is_object() || !j.contains("results") || !j["results"].is_array()) throw bad("expected an object with a \"results\" array");
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < calls.size(); ++i) index[calls[i].id] = i;
  std::vector<std::string> out(calls.size());
  std::vector<bool> seen(calls.size(), false);
  for (const auto& r : j["results"]) {
    if (!r.is_object() || !r.contains("id") || !r["id"].is_string()) throw bad("each result needs a string \"id\"");
    const std::string id = r["id"].get<std::string>();
    auto it = index.find(id);
    if (it == index.end()) throw bad("result for unknown call id " + quote(id, 40));
    if (seen[it->second]) throw bad("two results for call id " + quote(id, 40));
    if (!r.contains("content") || !r["content"].is_string()) throw bad("result " + quote(id, 40) + ": \"content\" must be a string");
    out[it->second] = r["content"].get<std::string>();
    seen[it->second] = true;
  }
  for (size_t i = 0; i < calls.size(); ++i)
    if (!seen[i]) throw bad("no result for call id " + quote(calls[i].id, 40));
  return out;
}

ToolProgram::ToolProgram(std::vector<std::string> argv, double timeout_s, int max_restarts)
    : program_("tool_command", "tool_timeout", "tool_restarts", std::move(argv), timeout_s, max_restarts) {}

std::vector<std::string> ToolProgram::call(const std::vector<ProgramCall>& calls, int64_t step) {
  ordered_json j = ordered_json::object();
  j["calls"] = ordered_json::array();
  for (const auto& c : calls) j["calls"].push_back(ordered_json::object({{"id", c.id}, {"name", c.name}, {"arguments", c.arguments}}));
  j["step"] = step;
  return parse_tool_reply(program_.ask(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), step), calls, program_.describe());
}

// ---------------------------------------------------------------------------------------------
// The server

bool is_tool_error(const std::string& result) {
  return starts_with(result, "{\"error\": ") || starts_with(result, "error: ");
}

ToolServer::ToolServer(const TrainConfig& cfg) : tools_(cfg.tools), max_calls_(cfg.max_tool_calls), max_tokens_(cfg.max_tool_tokens) {
  if (!cfg.tool_command.empty()) program_ = std::make_unique<ToolProgram>(cfg.tool_command, cfg.tool_timeout, cfg.tool_restarts);
}

void check_tool_support(const Tokenizer& tok, const ChatTemplate& chat, const std::vector<ToolSpec>& tools) {
  if (!tok.token_to_id("</tool_call>"))
    throw Error("config key 'tools': the tokenizer has no </tool_call> token, so a call's end cannot be seen while decoding");
  const std::string shown = chat.render({{"user", "?"}}, /*add_generation_prompt=*/true, tools_json(tools)).s;
  for (const ToolSpec& t : tools)
    if (shown.find(t.name) == std::string::npos)
      throw Error("config key 'tools': the chat template (" + chat.source() + ") does not show the tools to the model (" + quote(t.name) +
                  " is not in its rendering); tool calling needs a template that renders `tools`");
}

void ToolServer::attach(SamplingParams& sp, const Tokenizer& tok, const ChatTemplate& chat, int64_t n_seqs, int64_t step) {
  check_tool_support(tok, chat, tools_);
  const auto end = tok.token_to_id("</tool_call>");
  tok_ = &tok;
  chat_ = chat;
  step_ = step;
  turns_.assign(static_cast<size_t>(n_seqs), {});
  sp.tools.call_end_id = *end;
  sp.tools.max_turns = max_calls_;
  sp.tools.max_reply_ids = max_tokens_;
  sp.tools.run = [this](const std::vector<int64_t>& seqs, const std::vector<std::vector<int32_t>>& turns) { return answer(seqs, turns); };
}

namespace tool_impl {

// Cut `s` to at most `bytes` bytes at a UTF-8 character boundary.
std::string cut_utf8(const std::string& s, size_t bytes) {
  if (s.size() <= bytes) return s;
  while (bytes > 0 && (static_cast<unsigned char>(s[bytes]) & 0xC0) == 0x80) --bytes;
  return s.substr(0, bytes);
}

// The turn's results rendered by the chat template after the turn's end token, tokenized (the
// results as text: special tokens inside them stay text), cut to `max_tokens` (longest result first).
std::vector<int32_t> rendered_ids(const Tokenizer& tok, const ChatTemplate& chat, std::vector<std::string> results,
                                  const ordered_json& tools, const std::string& end_token, int max_tokens) {
  const std::string mark = "...[cut]";
  for (;;) {
    auto ids = encode_rendered(tok, chat.tool_response_text(results, tools, end_token));
    if (static_cast<int>(ids.size()) <= max_tokens) return ids;
    auto longest = std::max_element(results.begin(), results.end(), [](const auto& a, const auto& b) { return a.size() < b.size(); });
    if (longest->empty()) return {};  // even empty results do not fit: the sequence ends
    const size_t keep = longest->size() > mark.size() ? (longest->size() - mark.size()) * 3 / 4 : 0;
    *longest = keep == 0 ? "" : cut_utf8(*longest, keep) + mark;
  }
}

}  // namespace tool_impl

std::vector<std::vector<int32_t>> ToolServer::answer(const std::vector<int64_t>& seqs, const std::vector<std::vector<int32_t>>& turns) {
  // Parse every turn; the built-in and unreadable calls are answered here, the rest batched.
  std::vector<ToolTurn> out(seqs.size());
  std::vector<ProgramCall> batch;
  std::vector<std::pair<size_t, size_t>> where;  // (turn, call) of each batched call
  for (size_t i = 0; i < seqs.size(); ++i) {
    out[i].calls = parse_tool_calls(tok_->decode(turns[i], /*skip_special=*/false));
    out[i].results.resize(out[i].calls.size());
    for (size_t k = 0; k < out[i].calls.size(); ++k) {
      const ToolCall& c = out[i].calls[k];
      auto spec = std::find_if(tools_.begin(), tools_.end(), [&](const ToolSpec& t) { return t.name == c.name; });
      if (c.error.empty() && spec != tools_.end() && !spec->builtin) {
        batch.push_back({std::to_string(seqs[i]) + "." + std::to_string(k), c.name, c.arguments});
        where.emplace_back(i, k);
      } else {
        out[i].results[k] = run_builtin_tool(c, tools_);
      }
    }
  }
  if (!batch.empty()) {
    auto results = program_->call(batch, step_);
    for (size_t b = 0; b < batch.size(); ++b) out[where[b].first].results[where[b].second] = std::move(results[b]);
  }
  std::vector<std::vector<int32_t>> answers;
  const ordered_json schemas = tools_json(tools_);
  for (size_t i = 0; i < seqs.size(); ++i) {
    // A turn that closed a call it never opened has nothing to answer: the sequence ends there.
    answers.push_back(out[i].calls.empty() ? std::vector<int32_t>{}
                                           : tool_impl::rendered_ids(*tok_, chat_, out[i].results, schemas,
                                                                     tok_->id_to_token(turns[i].back()), max_tokens_));
    if (!answers.back().empty()) turns_.at(static_cast<size_t>(seqs[i])).push_back(std::move(out[i]));
  }
  return answers;
}

// ---------------------------------------------------------------------------------------------
// A completion with tool turns, read back

ToolUse tool_use(const std::vector<ToolTurn>& turns, const Gold& gold) {
  ToolUse u;
  for (const ToolTurn& turn : turns)
    for (const std::string& result : turn.results) {
      ++u.calls;
      if (is_tool_error(result)) {
        ++u.errors;
        continue;
      }
      const auto v = whole_number(result);
      // "The result is the gold" is the correctness reward's own test (answers_equal, 1e-6 relative)
      u.useful = u.useful || (v && gold.number ? answers_equal(*v, *gold.number) : math_answers_equal(result, gold.text));
    }
  return u;
}

Transcript read_transcript(const Tokenizer& tok, const std::vector<int32_t>& ids, const std::vector<int32_t>& own,
                           const std::vector<ToolTurn>& turns) {
  Transcript t;
  t.text = tok.decode(ids, /*skip_special=*/false);
  t.messages = ordered_json::array();
  size_t tool_turn = 0;
  for (size_t a = 0; a < ids.size();) {
    size_t b = a;
    while (b < ids.size() && own[b] == own[a]) ++b;
    const std::vector<int32_t> seg(ids.begin() + a, ids.begin() + b);
    if (own[a]) {
      const std::string text = tok.decode(seg, /*skip_special=*/true);
      ordered_json m = ordered_json::object({{"role", "assistant"}, {"content", text}});
      if (b < ids.size() && tool_turn < turns.size()) {  // a turn answered by tools: content, then its calls
        const size_t open = text.find("<tool_call>");
        std::string content = text.substr(0, open);
        while (!content.empty() && (content.back() == '\n' || content.back() == ' ')) content.pop_back();
        m["content"] = content;
        m["tool_calls"] = ordered_json::array();
        for (const auto& c : turns[tool_turn].calls)
          m["tool_calls"].push_back(ordered_json::object(
              {{"type", "function"}, {"function", ordered_json::object({{"name", c.name}, {"arguments", c.arguments}})}}));
      } else {
        t.final_text = text;
      }
      t.messages.push_back(std::move(m));
    } else if (tool_turn < turns.size()) {
      for (const auto& r : turns[tool_turn].results) t.messages.push_back(ordered_json::object({{"role", "tool"}, {"content", r}}));
      ++tool_turn;
    }
    a = b;
  }
  return t;
}

std::vector<Transcript> read_answers(const Rollout& r, const Tokenizer& tok, const ToolServer* tools) {
  const auto ids = completion_token_ids(r);
  const auto own = tools ? completion_own_flags(r) : std::vector<std::vector<int32_t>>{};
  std::vector<Transcript> out(ids.size());
  for (size_t k = 0; k < ids.size(); ++k)
    if (tools)
      out[k] = read_transcript(tok, ids[k], own[k], tools->turns()[k]);
    else
      out[k].final_text = tok.decode(ids[k], /*skip_special=*/true);
  return out;
}

}  // namespace grpo

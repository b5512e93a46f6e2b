// jinja.h: a Jinja engine for Hugging Face chat templates (no Python). A template is parsed once and
// rendered many times, as transformers renders it: jinja2 3.1's language with transformers'
// environment (trim_blocks, lstrip_blocks, the loop-controls extension, the `generation` tag rendered
// as its body, an immutable sandbox), its `tojson` (json.dumps with ensure_ascii=False, indent,
// separators, sort_keys) and its globals `raise_exception` and `strftime_now`. Values print as Python
// prints them (None, True, 1.0, {'a': [1, 'b']}).
//
// Provenance: every string carries labelled byte spans saying where its characters came from (the
// caller labels the context's strings: a message's content, a tool result). Spans follow the
// characters through concatenation, slicing, trim, split, joins and macro calls, so the rendered
// text knows which of its bytes were data and which the template wrote; the chat layer matches
// special tokens only in the template's own text.
//
// Limits, so a template cannot hang or exhaust the process: nesting 256 deep when parsing, macro
// recursion 100 deep, and per render (Limits) 20 million evaluation steps, 64 MiB of output and
// 1,000 nested evaluations; ranges of 100,000 items (the sandbox's). Every error names the template's
// source, line and column and the construct.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "grpo/base/common.h"

namespace grpo::jinja {

// [begin, end) bytes of a string that came from a labelled source (label > 0; 0 is never stored).
struct Span {
  size_t begin = 0, end = 0;
  int label = 0;
};

// A string with provenance: the text, and the spans of it that came from labelled data (sorted,
// disjoint). Unlabelled bytes were written by the template (or by unlabelled context values).
struct Text {
  std::string s;
  std::vector<Span> spans;

  void append(std::string_view t, int label = 0);
  void append(const Text& t);
  // Bytes [b, e) with their spans.
  Text slice(size_t b, size_t e) const;
  // The label covering every byte of [b, e), or 0 when part of it is unlabelled.
  int label_at(size_t pos) const;
  // All of it labelled `label` (0: all unlabelled).
  static Text labelled(std::string s, int label);
};

// A template error (parse or render): the message names the source, line and column.
class TemplateError : public Error {
 public:
  using Error::Error;
};
// raise_exception("...") from the template: what() is "<source>: <the message>".
class TemplateRaised : public TemplateError {
 public:
  TemplateRaised(const std::string& what, std::string message) : TemplateError(what), message_(std::move(message)) {}
  const std::string& message() const { return message_; }

 private:
  std::string message_;
};

struct Node;
struct Dict;
struct Func;

// A Jinja value: Python's None, bool, int, float, str (with provenance), list/tuple, dict (string keys,
// insertion order; namespace() objects are dicts whose attributes may be set), callables; and
// Undefined, what a missing name or key gives (prints as "", is false, iterates as empty).
struct Value {
  enum class Kind : uint8_t { Undefined, None, Bool, Int, Float, Str, List, Dict, Func };
  Kind kind = Kind::Undefined;
  bool tuple = false;  // a List written as a tuple: ('a', 1)
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::shared_ptr<const Text> str;
  std::shared_ptr<const std::vector<Value>> list;
  std::shared_ptr<jinja::Dict> dict;
  std::shared_ptr<const jinja::Func> fn;
  std::shared_ptr<const std::string> hint;  // Undefined: what was missing, for errors

  Value() = default;
  static Value none();
  static Value boolean(bool v);
  static Value integer(int64_t v);
  static Value number(double v);
  static Value string(std::string s, int label = 0);
  static Value string(Text t);
  static Value make_list(std::vector<Value> items, bool tuple = false);
  static Value make_dict(std::shared_ptr<jinja::Dict> d);
  static Value undefined(std::string what);
  bool is(Kind k) const { return kind == k; }
};

// A dict's items in insertion order (string keys); a namespace() object is one whose attributes may be set.
struct Dict {
  std::vector<std::pair<std::string, Value>> items;
  bool is_namespace = false;
  const Value* find(std::string_view key) const;
  void set(const std::string& key, Value v);
};

// A context value built from JSON: objects become dicts (key order kept), arrays lists, strings
// labelled `label`. The variables of one render are name -> value pairs.
Value from_json(const nlohmann::ordered_json& j, int label = 0);
using Vars = std::vector<std::pair<std::string, Value>>;

// How much one render may do before it ends in an error (a fuzzer or a service sets them lower).
struct Limits {
  int64_t max_steps = 20'000'000;  // expression and statement evaluations, loop iterations
  size_t max_output = 64u << 20;   // bytes of output (and of any one string made by repetition)
  int max_depth = 1000;            // nested evaluations (expressions inside macro calls inside loops ...)
};

class Template {
 public:
  // Parses `source_text`; `name` (a file, "file: field chat_template") prefixes every error.
  Template(const std::string& source_text, const std::string& name);
  ~Template();
  Template(Template&&) noexcept;
  Template& operator=(Template&&) noexcept;
  Template(const Template&) = delete;
  Template& operator=(const Template&) = delete;

  Text render(const Vars& vars, const Limits& limits = {}) const;
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::shared_ptr<const Node> root_;
};

// Python's json.dumps(value, ensure_ascii, indent (<0: none), separators, sort_keys) of a JSON value,
// as transformers' tojson writes it.
std::string python_json_dumps(const nlohmann::ordered_json& j, bool ensure_ascii = false, int indent = -1);

}  // namespace grpo::jinja

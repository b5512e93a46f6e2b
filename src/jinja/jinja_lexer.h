// jinja_lexer.h: the tokens lexer.cpp makes of a template and parser.cpp reads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "jinja_impl.h"

namespace grpo::jinja {

struct Token {
  enum T : uint8_t { Data, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, End } t = End;
  std::string s;  // Data's text, a name, a string's value, an operator
  int64_t i = 0;
  double f = 0;
  size_t at = 0;  // byte offset in the (newline-normalised) source
};

// The tokens of `src`; `line_starts` (optional) gets each line's first byte offset, for positions.
std::vector<Token> lex(const std::string& src, const std::string& name, std::vector<int>* line_starts);

}  // namespace grpo::jinja

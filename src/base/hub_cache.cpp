// hub_cache.cpp: "org/name[@revision]" -> the snapshot directory in the Hugging Face hub cache
// (huggingface_hub's file_download.py: repo folder models--{org}--{name}, refs/{revision} holding a
// commit hash, snapshots/{commit}). Departure: no network and no lock files; a revision that is
// neither a ref nor a snapshot is an error, not a download.
#include "grpo/base/hub_cache.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "grpo/base/common.h"

namespace grpo {

namespace fs = std::filesystem;

std::string hub_cache_dir() {
  auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v && *v ? v : "";
  };
  if (auto v = env("HF_HUB_CACHE"); !v.empty()) return v;
  if (auto v = env("HF_HOME"); !v.empty()) return v + "/hub";
  if (auto v = env("XDG_CACHE_HOME"); !v.empty()) return v + "/huggingface/hub";
  return env("HOME") + "/.cache/huggingface/hub";
}

namespace {

// A hub repository id: "org/name", each part of letters, digits, '-', '_', '.'.
bool is_repo_id(const std::string& s) {
  const size_t slash = s.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == s.size() || s.find('/', slash + 1) != std::string::npos) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '/')) return false;
  return s.find("..") == std::string::npos;
}

// The names in `dir`, sorted, for messages.
std::string listing(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "none" : out;
}

}  // namespace

std::string resolve_model_path(const std::string& arg) {
  if (fs::exists(arg)) return arg;
  const size_t at = arg.find('@');
  const std::string repo = arg.substr(0, at), revision = at == std::string::npos ? "main" : arg.substr(at + 1);
  if (!is_repo_id(repo) || revision.empty() || revision.find('/') != std::string::npos) return arg;
  const std::string cache = hub_cache_dir();
  const fs::path folder = fs::path(cache) / ("models--" + repo.substr(0, repo.find('/')) + "--" + repo.substr(repo.find('/') + 1));
  const std::string download = "; download it where there is a network with `hf download " + repo +
                               (at == std::string::npos ? "" : " --revision " + revision) +
                               "` (huggingface_hub), or pass the model's directory";
  if (!fs::is_directory(folder))
    throw Error(arg + ": not a directory, and not in the Hugging Face cache (looked for " + folder.string() +
                "; the cache is $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub)" + download);
  std::string commit = revision;
  if (fs::is_regular_file(folder / "refs" / revision)) commit = std::string(trim(read_file((folder / "refs" / revision).string())));
  const fs::path snapshot = folder / "snapshots" / commit;
  if (!fs::is_directory(snapshot)) {
    if (commit != revision)
      throw Error(arg + ": " + (folder / "refs" / revision).string() + " names commit " + commit + ", but " + snapshot.string() +
                  " is missing (snapshots: " + listing(folder / "snapshots") + ")" + download);
    throw Error(arg + ": revision '" + revision + "' is neither a ref (" + listing(folder / "refs") + ") nor a snapshot (" +
                listing(folder / "snapshots") + ") in " + folder.string() + download);
  }
  return snapshot.string();
}

}  // namespace grpo

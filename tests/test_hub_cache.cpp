// test_hub_cache.cpp: "org/name[@revision]" resolved in a fake Hugging Face cache tree laid out as
// huggingface_hub writes it (refs/main, a tag, two snapshots), and the errors for what is missing.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "grpo/base/common.h"
#include "grpo/base/hub_cache.h"
#include "test_util.h"

using namespace grpo;
using grpo::test::error_of;

namespace {

namespace fs = std::filesystem;

// <root>/models--Qwen--Tiny: refs/main -> aaaa, refs/v1 -> bbbb, snapshots aaaa and bbbb; refs/broken -> cccc (missing).
std::string fake_cache() {
  const std::string root = grpo::test::temp_dir() + "/hub";
  const std::string repo = root + "/models--Qwen--Tiny";
  for (const char* c : {"aaaa", "bbbb"}) fs::create_directories(repo + "/snapshots/" + c);
  fs::create_directories(repo + "/refs");
  write_file_atomic(repo + "/refs/main", "aaaa");  // huggingface_hub writes the hash without a newline
  write_file_atomic(repo + "/refs/v1", "bbbb\n");
  write_file_atomic(repo + "/refs/broken", "cccc");
  return root;
}

struct EnvGuard {  // HF_HUB_CACHE for one test
  explicit EnvGuard(const std::string& v) { setenv("HF_HUB_CACHE", v.c_str(), 1); }
  ~EnvGuard() { unsetenv("HF_HUB_CACHE"); }
};

}  // namespace

TEST(HubCache, ResolvesRefsTagsAndCommits) {
  const std::string root = fake_cache();
  EnvGuard env(root);
  EXPECT_EQ(hub_cache_dir(), root);
  EXPECT_EQ(resolve_model_path("Qwen/Tiny"), root + "/models--Qwen--Tiny/snapshots/aaaa");
  EXPECT_EQ(resolve_model_path("Qwen/Tiny@v1"), root + "/models--Qwen--Tiny/snapshots/bbbb");
  EXPECT_EQ(resolve_model_path("Qwen/Tiny@bbbb"), root + "/models--Qwen--Tiny/snapshots/bbbb");  // a commit itself
  // An existing path is taken as it is, and what is not a repository id is left to the caller.
  EXPECT_EQ(resolve_model_path(root), root);
  EXPECT_EQ(resolve_model_path("/no/such/dir"), "/no/such/dir");
  EXPECT_EQ(resolve_model_path("plain"), "plain");
}

TEST(HubCache, MissingModelsAndRevisionsNameWhereTheyLooked) {
  const std::string root = fake_cache();
  EnvGuard env(root);
  const std::string missing = error_of([] { resolve_model_path("Qwen/Other"); });
  EXPECT_NE(missing.find("Qwen/Other: not a directory, and not in the Hugging Face cache (looked for " + root + "/models--Qwen--Other"),
            std::string::npos)
      << missing;
  EXPECT_NE(missing.find("`hf download Qwen/Other`"), std::string::npos) << missing;
  const std::string rev = error_of([] { resolve_model_path("Qwen/Tiny@v2"); });
  EXPECT_NE(rev.find("revision 'v2' is neither a ref (broken, main, v1"), std::string::npos) << rev;
  EXPECT_NE(rev.find("`hf download Qwen/Tiny --revision v2`"), std::string::npos) << rev;
  const std::string broken = error_of([] { resolve_model_path("Qwen/Tiny@broken"); });
  EXPECT_NE(broken.find("refs/broken names commit cccc, but " + root + "/models--Qwen--Tiny/snapshots/cccc is missing"), std::string::npos)
      << broken;
}

TEST(HubCache, CacheDirectoryFollowsHuggingFaceHubsVariables) {
  unsetenv("HF_HUB_CACHE");
  setenv("HF_HOME", "/data/hf", 1);
  EXPECT_EQ(hub_cache_dir(), "/data/hf/hub");
  unsetenv("HF_HOME");
  const char* xdg = getenv("XDG_CACHE_HOME");
  const std::string saved = xdg ? xdg : "";
  setenv("XDG_CACHE_HOME", "/x", 1);
  EXPECT_EQ(hub_cache_dir(), "/x/huggingface/hub");
  unsetenv("XDG_CACHE_HOME");
  EXPECT_EQ(hub_cache_dir(), std::string(getenv("HOME")) + "/.cache/huggingface/hub");
  if (!saved.empty()) setenv("XDG_CACHE_HOME", saved.c_str(), 1);
}

// hub_cache.h: models from the local Hugging Face hub cache, so that `grpo_train Qwen/Qwen2.5-1.5B-Instruct`
// trains what any transformers use downloaded, as huggingface_hub lays the cache out:
//   <cache>/models--<org>--<name>/refs/<revision>     the commit a branch or tag points to
//   <cache>/models--<org>--<name>/snapshots/<commit>/ the model directory at that commit
// <cache> is $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
// ~/.cache/huggingface/hub. Nothing is downloaded: the machines that train are often offline.
#pragma once

#include <string>

namespace grpo {

// The directory a tool's model argument names: an existing path as it is; otherwise "org/name" or
// "org/name@revision" (a branch, tag or commit; default main) resolved in the cache. An argument of
// that form not in the cache is an Error listing where it looked and the command that downloads it;
// any other argument is returned unchanged (the caller's "does not exist" error names it).
std::string resolve_model_path(const std::string& arg);

// The cache directory the rules above pick.
std::string hub_cache_dir();

}  // namespace grpo

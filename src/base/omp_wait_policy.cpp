// omp_wait_policy.cpp: the OMP_WAIT_POLICY=passive default of the programs that compute with
// LibTorch (why: init_runtime in include/grpo/device.h). Its own object file, so that only the
// programs that ask for it (CMake: -u grpo_default_omp_wait_policy) take it, not every program
// that uses device.cpp.
//
// Only where LibTorch's BLAS has its own threads (Debian's LibTorch: the pthread OpenBLAS). Where
// the BLAS is MKL on LibTorch's own OpenMP pool (pip torch 2.x), the spinning workers are the very
// threads the next GEMM needs: passive made CPU decode 1.4-3.5x slower there and the update no
// faster (docs/benchmarks.md, "CPU: OpenMP wait policy"), so those builds leave libgomp's default.
#include <alloca.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>

#include "grpo/base/common.h"
#include "grpo/base/device.h"

// Runs from the executable's .preinit_array, after the dynamic loader has mapped the libraries
// and before any of their initialisers. libgomp reads its environment once, in its initialiser,
// and libc's initialiser (which runs first) resets the environment to the one the process
// started with, and a library of ours would be initialised after libgomp whatever its link order
// (measured). So when neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT is set, the process execs itself
// once with OMP_WAIT_POLICY=passive added: no library code has run yet, so this costs only the
// loading (0.14 s here, Debian's LibTorch maps ~290 libraries). Set either variable to run as
// is. Linked into the programs that compute with LibTorch (CMake: -u grpo_default_omp_wait_policy).
extern "C" void grpo_default_omp_wait_policy(int, char** argv, char** envp) {
  if (!grpo::omp_passive_by_default()) return;
  using grpo::starts_with;  // a pure string_view comparison: safe before any initialiser
  size_t n = 0;
  for (; envp && envp[n]; ++n)
    if (starts_with(envp[n], "OMP_WAIT_POLICY=") || starts_with(envp[n], "GOMP_SPINCOUNT=")) return;
  // Started through the dynamic loader (`ld-linux-x86-64.so.2 grpo_train ...`): /proc/self/exe
  // is the loader, which would take our first argument for the program. Run on as we are.
  char exe[4096];
  const ssize_t len = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len <= 0) return;
  exe[len] = '\0';
  const char* base = std::strrchr(exe, '/');
  base = base ? base + 1 : exe;
  if (starts_with(base, "ld-") || starts_with(base, "ld.so")) return;
  auto** env = static_cast<char**>(alloca((n + 2) * sizeof(char*)));  // libc is not initialised: no malloc
  for (size_t i = 0; i < n; ++i) env[i] = envp[i];
  env[n] = const_cast<char*>("OMP_WAIT_POLICY=passive");
  env[n + 1] = nullptr;
  ::execve(exe, argv, env);  // returns only if it failed: run on as we are
}
using PreinitFn = void (*)(int, char**, char**);
__attribute__((section(".preinit_array"), used)) static PreinitFn grpo_preinit_entry = &grpo_default_omp_wait_policy;

// How a pass over the data runs: rows split into chunks, chunks grouped into a fixed number of
// blocks, blocks run on threads and their statistics merged in block order. The block layout
// depends only on the number of rows and the chunk size, never on the thread count, so results
// are identical for any number of threads (DESIGN.md §4).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <future>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "entrosum/core/errors.hpp"
#include "entrosum/core/floating_point.hpp"
#include "entrosum/core/types.hpp"

namespace entrosum {

/// Options for every pass over the data.
struct Execution {
  /// Rows per chunk; 0 picks about 1 MiB of data per chunk.
  Index chunk_size = 0;
  /// Threads for passes over the data (each runs single-threaded matrix products).
  int n_threads = 1;
  /// Polled by the calling thread before each chunk it takes (and every few milliseconds during dense steps
  /// that cannot poll); returning true stops the pass with `Interrupted`.
  std::function<bool()> interrupted;
  /// Called with the rows [begin, end) of each chunk a pass has finished with. For data in a memory-mapped
  /// file it lets the caller drop those pages from memory, so a pass over a file larger than RAM keeps only
  /// a few chunks resident; empty for data in memory.
  std::function<void(Index begin, Index end)> release_rows;
};

/// Most blocks a pass is split into; their statistics are merged in this fixed order.
inline constexpr Index kMaxBlocks = 64;

/// Most rows of a default chunk. A pass's work per row grows with the components, not only with the columns: 1 MiB
/// of narrow data (colour pixels: 43,690 rows of 3 doubles) made chunks so long that 136,640 rows were 4 chunks
/// and 2 threads shared them 3 : 1 in time. 8,192 rows keep several chunks per thread and the per-chunk (rows, K)
/// buffers small. It does not depend on the thread count, so neither do the results.
inline constexpr Index kMaxDefaultChunkRows = 8192;

/// Rows per chunk for `n_features` columns of `bytes_per_value` bytes (about 1 MiB of data, 256 to
/// kMaxDefaultChunkRows rows), honouring an explicit size.
inline Index resolve_chunk_size(const Execution& execution, Index n_features, Index bytes_per_value) {
  if (execution.chunk_size > 0) return execution.chunk_size;
  const Index target_bytes = Index(1) << 20;
  const Index rows = target_bytes / std::max<Index>(1, n_features * bytes_per_value);
  return std::clamp<Index>(rows, 256, kMaxDefaultChunkRows);
}

namespace detail {

/// What the threads of one pass share: the interruption check, polled by the calling thread (slot 0) between
/// chunks, and a flag that stops the other threads once any thread has stopped (interrupted or failed).
class PassControl {
 public:
  explicit PassControl(const Execution& execution) : execution_(execution) {}

  /// Whether the thread in `slot` may start its next chunk. On the calling thread this polls the
  /// interruption check and throws Interrupted when it fires; a false return means another thread has
  /// stopped the pass and will report why, so the caller just returns.
  bool proceed(int slot) {
    if (slot == 0 && execution_.interrupted && execution_.interrupted()) {
      stop();
      throw Interrupted();
    }
    return !stopped_.load(std::memory_order_relaxed);
  }
  void stop() { stopped_.store(true, std::memory_order_relaxed); }
  /// After a chunk: lets the caller drop the rows' pages (memory-mapped data).
  void release(Index begin, Index end) const {
    if (execution_.release_rows) execution_.release_rows(begin, end);
  }

 private:
  const Execution& execution_;
  std::atomic<bool> stopped_{false};
};

/// Runs `work(slot)` for slot = 0..n_slots-1, one thread each (the caller takes slot 0), and
/// rethrows the first exception a slot raised. Every slot runs with subnormals flushed to zero
/// (floating_point.hpp): passes over data never pay for subnormal arithmetic.
template <typename Work>
void run_slots(int n_slots, const Work& work) {
  if (n_slots == 1) {
    const SubnormalsAsZero flush;
    work(0);
    return;
  }
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(n_slots));
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(n_slots - 1));
  for (int slot = 1; slot < n_slots; ++slot) {
    threads.emplace_back([&, slot] {
      const SubnormalsAsZero flush;
      try {
        work(slot);
      } catch (...) {
        errors[static_cast<std::size_t>(slot)] = std::current_exception();
      }
    });
  }
  try {
    const SubnormalsAsZero flush;  // the caller's own mode comes back before it rethrows or returns
    work(0);
  } catch (...) {
    errors[0] = std::current_exception();
  }
  for (auto& thread : threads) thread.join();
  for (auto& error : errors)
    if (error) std::rethrow_exception(error);
}

/// Runs `work(block, slot)` for block = 0..n_blocks-1 on `n_threads` threads (slot = the thread's
/// index, 0 for the caller), each taking the next block when it is free. Before each block, `control`
/// polls for interruption (calling thread) and stops every thread once one has stopped; `work` polls it
/// between the chunks of a block the same way. An exception on any thread stops the others.
template <typename Work>
void run_blocks(Index n_blocks, int n_threads, PassControl& control, const Work& work) {
  std::atomic<Index> next_block(0);
  run_slots(n_threads, [&](int slot) {
    try {
      while (control.proceed(slot)) {
        const Index block = next_block.fetch_add(1);
        if (block >= n_blocks) return;
        work(block, slot);
      }
    } catch (...) {
      control.stop();
      throw;
    }
  });
}

}  // namespace detail

/// Runs `compute()`, a dense step that cannot poll for interruption (an eigendecomposition, a large
/// factorisation), on a helper thread while the calling thread polls `execution.interrupted` every 20 ms.
/// When it fires, Interrupted is thrown at once; the helper finishes in the background and its result is
/// dropped, so `compute` must own (capture by value) everything it uses.
template <typename Compute>
auto run_interruptible(const Execution& execution, Compute compute) -> decltype(compute()) {
  using Result = decltype(compute());
  if (!execution.interrupted) return compute();
  auto task = std::make_shared<std::packaged_task<Result()>>(std::move(compute));
  std::future<Result> result = task->get_future();
  std::thread([task] { (*task)(); }).detach();
  while (result.wait_for(std::chrono::milliseconds(20)) != std::future_status::ready)
    if (execution.interrupted()) throw Interrupted();
  return result.get();
}

/// Reduces a pass over `n_rows` rows into one statistics value.
///   make_stats()                               -> Stats, a zero value
///   accumulate(Index begin, Index end, Stats&)    adds rows [begin, end) of one chunk
///   Stats::operator+=(const Stats&)               merges
/// With `make_workspace`, each thread gets one workspace = make_workspace() for the whole pass and
/// `accumulate(begin, end, stats, workspace)` may keep its buffers there between chunks.
/// Blocks are contiguous runs of chunks; each is accumulated by one thread from zero. Threads take the
/// next block as they become free (no thread waits for another's block), and finished blocks are merged
/// into the total strictly in block order, so the sum does not depend on which thread took which block.
template <typename MakeStats, typename MakeWorkspace, typename Accumulate>
auto reduce_rows(Index n_rows, Index chunk_size, const Execution& execution, const MakeStats& make_stats,
                 const MakeWorkspace& make_workspace, const Accumulate& accumulate) -> decltype(make_stats()) {
  using Stats = decltype(make_stats());
  Stats total = make_stats();
  if (n_rows <= 0) return total;
  chunk_size = std::clamp<Index>(chunk_size, 1, n_rows);  // (n_rows + chunk_size − 1) must not overflow
  const Index n_chunks = (n_rows + chunk_size - 1) / chunk_size;
  const Index n_blocks = std::min(n_chunks, kMaxBlocks);
  const int n_threads = static_cast<int>(std::clamp<Index>(execution.n_threads, 1, n_blocks));

  std::vector<std::optional<Stats>> finished(static_cast<std::size_t>(n_blocks));  // blocks awaiting their turn
  Index next_to_merge = 0;
  std::mutex merge_mutex;
  auto merge = [&](Index block, Stats&& stats) {
    const std::lock_guard<std::mutex> lock(merge_mutex);
    finished[static_cast<std::size_t>(block)] = std::move(stats);
    for (; next_to_merge < n_blocks && finished[static_cast<std::size_t>(next_to_merge)]; ++next_to_merge) {
      total += *finished[static_cast<std::size_t>(next_to_merge)];
      finished[static_cast<std::size_t>(next_to_merge)].reset();
    }
  };
  std::vector<decltype(make_workspace())> workspaces;
  workspaces.reserve(static_cast<std::size_t>(n_threads));
  for (int slot = 0; slot < n_threads; ++slot) workspaces.push_back(make_workspace());
  detail::PassControl control(execution);
  detail::run_blocks(n_blocks, n_threads, control, [&](Index block, int slot) {
    auto& workspace = workspaces[static_cast<std::size_t>(slot)];
    // Chunks [block * n_chunks / n_blocks, (block + 1) * n_chunks / n_blocks) of this block.
    const Index begin = block * n_chunks / n_blocks * chunk_size;
    const Index end = std::min(n_rows, (block + 1) * n_chunks / n_blocks * chunk_size);
    Stats stats = make_stats();
    for (Index row = begin; row < end; row += chunk_size) {
      // A block can be long (a 64th of the data): poll between its chunks too. A stopped block is not merged;
      // the thread that stopped the pass throws.
      if (row != begin && !control.proceed(slot)) return;
      const Index chunk_end = std::min(end, row + chunk_size);
      accumulate(row, chunk_end, stats, workspace);
      control.release(row, chunk_end);
    }
    merge(block, std::move(stats));
  });
  return total;
}

template <typename MakeStats, typename Accumulate>
auto reduce_rows(Index n_rows, Index chunk_size, const Execution& execution, const MakeStats& make_stats,
                 const Accumulate& accumulate) -> decltype(make_stats()) {
  struct NoWorkspace {};
  return reduce_rows(
      n_rows, chunk_size, execution, make_stats, [] { return NoWorkspace{}; },
      [&](Index begin, Index end, decltype(make_stats())& stats, NoWorkspace&) { accumulate(begin, end, stats); });
}

/// Runs `process(begin, end)` over chunks of rows whose results are independent (per-row outputs).
template <typename Process>
void for_each_chunk(Index n_rows, Index chunk_size, const Execution& execution, const Process& process) {
  if (n_rows <= 0) return;
  chunk_size = std::clamp<Index>(chunk_size, 1, n_rows);  // (n_rows + chunk_size − 1) must not overflow
  const Index n_chunks = (n_rows + chunk_size - 1) / chunk_size;
  const int n_threads = static_cast<int>(std::clamp<Index>(execution.n_threads, 1, n_chunks));
  detail::PassControl control(execution);
  detail::run_blocks(n_chunks, n_threads, control, [&](Index chunk, int) {
    const Index begin = chunk * chunk_size;
    const Index end = std::min(n_rows, begin + chunk_size);
    process(begin, end);
    control.release(begin, end);
  });
}

/// Index of the first row of `data` for which `is_bad(row)` holds, or −1 (validation scans: finite, binary,
/// counts). Chunks are scanned on threads; each stops at its first bad row and the smallest index wins.
template <typename T, typename IsBad>
Index first_row_where(const DataRef<T>& data, const Execution& execution, const IsBad& is_bad) {
  const Index chunk_size = resolve_chunk_size(execution, data.cols(), sizeof(T));
  std::atomic<Index> first(std::numeric_limits<Index>::max());
  for_each_chunk(data.rows(), chunk_size, execution, [&](Index begin, Index end) {
    for (Index row = begin; row < end; ++row) {
      if (is_bad(data.row(row))) {
        Index seen = first.load();
        while (row < seen && !first.compare_exchange_weak(seen, row)) {
        }
        return;
      }
    }
  });
  const Index row = first.load();
  return row == std::numeric_limits<Index>::max() ? -1 : row;
}

}  // namespace entrosum

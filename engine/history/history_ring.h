// HistoryRing: what reconciliation learned about each recent sequence number, readable by
// Query from any thread while the reconciler keeps writing.
//
// One record per sequence number, at index seq % capacity, so the ring keeps the last
// `capacity` sequence numbers; Query of an older one finds only the ingest-side facts
// (received, confirmed). Each slot is a seqlock: the writer makes the version odd, rewrites the
// record's words and makes it even again; a reader retries until it sees the same even version
// before and after copying.
//
// Thread safety: Write from the reconciler thread only (single writer per slot). Read from any
// thread, lock-free; it may retry while a write is in progress. Memory ordering: every word is
// an atomic; the writer's stores are `release` and the reader's loads `acquire`, so a reader
// that sees any new word also sees the odd version that preceded it (no standalone fences,
// which TSan does not model).
#ifndef VOUCH_ENGINE_HISTORY_HISTORY_RING_H_
#define VOUCH_ENGINE_HISTORY_HISTORY_RING_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <type_traits>

#include "engine/types/history_record.h"

namespace vouch {

class HistoryRing {
 public:
  // `capacity` is rounded up to a power of two.
  explicit HistoryRing(size_t capacity);
  HistoryRing(const HistoryRing&) = delete;
  HistoryRing& operator=(const HistoryRing&) = delete;

  // REQUIRES: called from the single writer thread; record.seq != 0.
  void Write(const HistoryRecord& record);
  // The record for `seq`, if it is still in the ring.
  std::optional<HistoryRecord> Read(Sequence seq) const;

 private:
  static constexpr size_t kWords = (sizeof(HistoryRecord) + 7) / 8;
  struct Slot {
    std::atomic<uint64_t> version{0};  // Odd while a write is in progress.
    std::atomic<uint64_t> words[kWords];
  };

  const size_t capacity_;
  const uint64_t mask_;
  std::unique_ptr<Slot[]> slots_;
};

}  // namespace vouch

#endif  // VOUCH_ENGINE_HISTORY_HISTORY_RING_H_

// SeqlockRing<T>: the last `capacity` values of a sequence-numbered stream, readable from any
// thread while one writer keeps writing.
//
// One value per sequence number, at index seq % capacity, so the ring keeps the last `capacity`
// sequence numbers; reading an older one (or one never written) finds nothing. Each slot is a
// seqlock: the writer makes the version odd, rewrites the value's words and makes it even again;
// a reader retries until it sees the same even version before and after copying.
//
// T is trivially copyable and has a `Sequence seq` member, non-zero once written. A ring may
// keep only the first `stored_bytes` of each value (a record whose tail is unused in this
// process, as HistoryRecord's verdict slots beyond the registered verifiers): the rest is not
// stored, not copied, and reads as zero.
//
// Thread safety: Write from one writer thread only. Read from any thread, lock-free; it may retry
// while a write is in progress. Memory ordering: every word is an atomic; the writer's stores are
// `release` and the reader's loads `acquire`, so a reader that sees any new word also sees the odd
// version that preceded it (no standalone fences, which TSan does not model).
#ifndef VOUCH_ENGINE_HISTORY_SEQLOCK_RING_H_
#define VOUCH_ENGINE_HISTORY_SEQLOCK_RING_H_

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <type_traits>

namespace vouch {

template <typename T>
class SeqlockRing {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  // `capacity` is rounded up to a power of two. REQUIRES: `stored_bytes` covers `seq`.
  explicit SeqlockRing(size_t capacity, size_t stored_bytes = sizeof(T))
      : capacity_(std::bit_ceil(capacity < 2 ? size_t{2} : capacity)),
        mask_(capacity_ - 1),
        words_((std::min(stored_bytes, sizeof(T)) + 7) / 8),
        slot_words_(1 + words_),
        slots_(new std::atomic<uint64_t>[capacity_ * slot_words_]) {
    assert(offsetof(T, seq) + sizeof(T::seq) <= words_ * 8);
    for (size_t i = 0; i < capacity_ * slot_words_; ++i) {
      // relaxed: construction happens-before the ring is shared.
      slots_[i].store(0, std::memory_order_relaxed);
    }
  }
  SeqlockRing(const SeqlockRing&) = delete;
  SeqlockRing& operator=(const SeqlockRing&) = delete;

  size_t capacity() const { return capacity_; }

  // REQUIRES: called from the single writer thread; value.seq != 0.
  void Write(const T& value) {
    assert(value.seq != 0);
    uint64_t words[kWords] = {};
    std::memcpy(words, &value, sizeof(value));
    std::atomic<uint64_t>* const slot = SlotAt(value.seq);
    std::atomic<uint64_t>& version_word = slot[0];
    // relaxed: single writer; the release stores below order this odd version before the data.
    const uint64_t version = version_word.load(std::memory_order_relaxed);
    version_word.store(version + 1, std::memory_order_relaxed);
    for (size_t i = 0; i < words_; ++i) {
      slot[1 + i].store(words[i], std::memory_order_release);  // release: see the class comment.
    }
    // release: a reader that sees the even version sees every word written before it.
    version_word.store(version + 2, std::memory_order_release);
  }

  // The value for `seq`, if it is still in the ring.
  std::optional<T> Read(uint64_t seq) const {
    const std::atomic<uint64_t>* const slot = SlotAt(seq);
    uint64_t words[kWords] = {};
    for (;;) {
      const uint64_t before = slot[0].load(std::memory_order_acquire);  // acquire: see Write.
      if (before & 1) continue;  // A write is in progress; it is a few dozen stores long.
      for (size_t i = 0; i < words_; ++i) {
        words[i] = slot[1 + i].load(std::memory_order_acquire);  // acquire: keeps loads in order.
      }
      if (slot[0].load(std::memory_order_acquire) == before) break;
    }
    T value;
    std::memcpy(&value, words, sizeof(value));
    if (value.seq != seq) return std::nullopt;  // Never written, or overwritten by a newer seq.
    return value;
  }

 private:
  static constexpr size_t kWords = (sizeof(T) + 7) / 8;
  // A slot is slot_words_ words: the version (odd while a write is in progress), then the first
  // words_ words of the value.
  std::atomic<uint64_t>* SlotAt(uint64_t seq) const { return &slots_[(seq & mask_) * slot_words_]; }

  const size_t capacity_;
  const uint64_t mask_;
  const size_t words_;       // Words of each value stored.
  const size_t slot_words_;  // 1 + words_.
  std::unique_ptr<std::atomic<uint64_t>[]> slots_;
};

}  // namespace vouch

#endif  // VOUCH_ENGINE_HISTORY_SEQLOCK_RING_H_

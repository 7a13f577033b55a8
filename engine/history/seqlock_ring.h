// SeqlockRing<T>: the last `capacity` values of a sequence-numbered stream, readable from any
// thread while one writer keeps writing.
//
// One value per sequence number, at index seq % capacity, so the ring keeps the last `capacity`
// sequence numbers; reading an older one (or one never written) finds nothing. Each slot is a
// seqlock: the writer makes the version odd, rewrites the value's words and makes it even again;
// a reader retries until it sees the same even version before and after copying.
//
// T is trivially copyable and has a `Sequence seq` member, non-zero once written.
//
// Thread safety: Write from one writer thread only. Read from any thread, lock-free; it may retry
// while a write is in progress. Memory ordering: every word is an atomic; the writer's stores are
// `release` and the reader's loads `acquire`, so a reader that sees any new word also sees the odd
// version that preceded it (no standalone fences, which TSan does not model).
#ifndef VOUCH_ENGINE_HISTORY_SEQLOCK_RING_H_
#define VOUCH_ENGINE_HISTORY_SEQLOCK_RING_H_

#include <atomic>
#include <bit>
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
  // `capacity` is rounded up to a power of two.
  explicit SeqlockRing(size_t capacity)
      : capacity_(std::bit_ceil(capacity < 2 ? size_t{2} : capacity)),
        mask_(capacity_ - 1),
        slots_(new Slot[capacity_]) {
    for (size_t i = 0; i < capacity_; ++i) {
      // relaxed: construction happens-before the ring is shared.
      for (auto& word : slots_[i].words) word.store(0, std::memory_order_relaxed);
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
    Slot& slot = slots_[value.seq & mask_];
    // relaxed: single writer; the release stores below order this odd version before the data.
    const uint64_t version = slot.version.load(std::memory_order_relaxed);
    slot.version.store(version + 1, std::memory_order_relaxed);
    for (size_t i = 0; i < kWords; ++i) {
      slot.words[i].store(words[i], std::memory_order_release);  // release: see the class comment.
    }
    // release: a reader that sees the even version sees every word written before it.
    slot.version.store(version + 2, std::memory_order_release);
  }

  // The value for `seq`, if it is still in the ring.
  std::optional<T> Read(uint64_t seq) const {
    const Slot& slot = slots_[seq & mask_];
    uint64_t words[kWords];
    for (;;) {
      const uint64_t before = slot.version.load(std::memory_order_acquire);  // acquire: see Write.
      if (before & 1) continue;  // A write is in progress; it is a few dozen stores long.
      for (size_t i = 0; i < kWords; ++i) {
        words[i] = slot.words[i].load(std::memory_order_acquire);  // acquire: keeps loads in order.
      }
      if (slot.version.load(std::memory_order_acquire) == before) break;
    }
    T value;
    std::memcpy(&value, words, sizeof(value));
    if (value.seq != seq) return std::nullopt;  // Never written, or overwritten by a newer seq.
    return value;
  }

 private:
  static constexpr size_t kWords = (sizeof(T) + 7) / 8;
  struct Slot {
    std::atomic<uint64_t> version{0};  // Odd while a write is in progress.
    std::atomic<uint64_t> words[kWords];
  };

  const size_t capacity_;
  const uint64_t mask_;
  std::unique_ptr<Slot[]> slots_;
};

}  // namespace vouch

#endif  // VOUCH_ENGINE_HISTORY_SEQLOCK_RING_H_

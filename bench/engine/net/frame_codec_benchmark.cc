// The server's frame handling, each against the naive way in the same run.
//
// Decode a Submit frame of 1 or 50 transactions, as the server's I/O thread does (io_thread.cc
// HandleFrames/HandleFrame): FrameDecoder::NextFrame, ParseEnvelope, then ParseFromArray into a
// reused v1::Submit. Against:
//   - fresh_client_message: ParseFromArray into a new v1::ClientMessage per frame (the naive way);
//   - reused_client_message: into one v1::ClientMessage kept across frames, which still
//     allocates: parsing a oneof member first clears the oneof, and clearing deletes the member.
// Every case first copies the frame into the decoder (FrameDecoder::Append, standing in for the
// read(2) into its buffer) and takes it out with NextFrame, so they differ only in the parse.
//
// Encode a Confirmation and an Outcome frame, as the server does (io_thread.cc Append): ToProto
// into a reused body message, then AppendEnvelopeFrame into the connection's output string.
// Against fresh_server_message: ToProto into the body of a new v1::ServerMessage per frame, then
// AppendFrame of the whole message. Both write into one output string that is cleared, keeping
// its capacity, whenever it passes kOutputBytesMax (as IoThread::Flush clears it once sent),
// so they differ only in the message.
//
// Method. Single-threaded. Time/op is per frame. allocs_per_frame counts calls to the global
// operator new, which this binary replaces with a counting one; each case runs one frame before
// counting, so a reused message has reached its steady state.
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <string>

#include "benchmark/benchmark.h"
#include "engine/net/frame_codec.h"
#include "engine/types/results.h"
#include "engine/types/transaction.h"
#include "engine/wire/convert.h"
#include "proto/vouch.pb.h"

namespace {
// relaxed, and a load + store rather than an atomic add: the binary allocates from one thread
// (the benchmark's), so this is a plain count that must not cost a locked instruction per call.
std::atomic<uint64_t> allocations{0};
}  // namespace

void* operator new(std::size_t size) {
  allocations.store(allocations.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
// noinline: inlined into a delete expression, free() of a new'd pointer draws a gcc warning.
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace vouch {
namespace {

constexpr size_t kFrameBytesMax = 64 * 1024;  // ServerOptions::frame_bytes_max default.
constexpr size_t kOutputBytesMax = 64 * 1024;
constexpr int64_t kUnixOffsetNs = 1'700'000'000'000'000'000;

uint64_t Allocations() { return allocations.load(std::memory_order_relaxed); }

// Reports allocations per frame from `before` (taken after the warm-up frame) to now.
void ReportAllocations(benchmark::State& state, uint64_t before) {
  state.counters["allocs_per_frame"] =
      static_cast<double>(Allocations() - before) / static_cast<double>(state.iterations());
}

std::string SubmitFrame(int transactions) {
  v1::Submit submit;
  for (int i = 1; i <= transactions; ++i) {
    Transaction txn;
    txn.id = 1'000'000 + i;
    txn.source_account = 10'000 + i;
    txn.destination_account = 20'000 + i;
    txn.amount_minor = 1999 + i;
    txn.currency = PackCurrency("USD");
    txn.merchant_category = 5411;
    txn.merchant_id = 4242;
    txn.country = PackCountry("GB");
    txn.device_id = 77;
    txn.client_timestamp_ns = kUnixOffsetNs + i;
    wire::ToProto(txn, submit.add_transactions());
  }
  std::string frame;
  if (!net::AppendEnvelopeFrame(v1::ClientMessage::kSubmit, submit, kFrameBytesMax, &frame)) {
    std::abort();
  }
  return frame;
}

enum class Decode { kReusedSubmit, kFreshClientMessage, kReusedClientMessage };

// Feeds `frame` to the decoder and takes the same frame out again.
void NextFrame(net::FrameDecoder& decoder, const std::string& frame, const char** data,
               size_t* size) {
  if (decoder.Append(frame.data(), frame.size()) != frame.size() ||
      decoder.NextFrame(data, size) != net::FrameDecoder::Result::kFrame) {
    std::abort();
  }
}

void BM_DecodeSubmit(benchmark::State& state, Decode way) {
  const int transactions = static_cast<int>(state.range(0));
  const std::string frame = SubmitFrame(transactions);
  net::FrameDecoder decoder(kFrameBytesMax);
  v1::Submit submit;
  v1::ClientMessage reused_message;
  auto decode_one = [&] {
    const char* data = nullptr;
    size_t size = 0;
    NextFrame(decoder, frame, &data, &size);
    int parsed = 0;
    switch (way) {
      case Decode::kReusedSubmit: {
        net::EnvelopeBody body;
        if (!net::ParseEnvelope(data, size, v1::ClientMessage::kPing, &body) ||
            body.field != v1::ClientMessage::kSubmit ||
            !submit.ParseFromArray(body.data, static_cast<int>(body.size))) {
          std::abort();
        }
        parsed = submit.transactions_size();
        break;
      }
      case Decode::kFreshClientMessage: {
        v1::ClientMessage message;
        if (!message.ParseFromArray(data, static_cast<int>(size))) std::abort();
        parsed = message.submit().transactions_size();
        break;
      }
      case Decode::kReusedClientMessage:
        if (!reused_message.ParseFromArray(data, static_cast<int>(size))) std::abort();
        parsed = reused_message.submit().transactions_size();
        break;
    }
    if (parsed != transactions) std::abort();
  };
  decode_one();  // Warm-up: reused messages grow to their steady-state size here.
  const uint64_t before = Allocations();
  for (auto _ : state) decode_one();
  ReportAllocations(state, before);
  state.SetItemsProcessed(state.iterations() * transactions);
  state.counters["frame_bytes"] = static_cast<double>(frame.size());
}
BENCHMARK_CAPTURE(BM_DecodeSubmit, reused_submit, Decode::kReusedSubmit)->Arg(1)->Arg(50);
BENCHMARK_CAPTURE(BM_DecodeSubmit, fresh_client_message, Decode::kFreshClientMessage)
    ->Arg(1)
    ->Arg(50);
BENCHMARK_CAPTURE(BM_DecodeSubmit, reused_client_message, Decode::kReusedClientMessage)
    ->Arg(1)
    ->Arg(50);

Confirmation MakeConfirmation(uint64_t n) {
  return {1'000'000 + n, ConfirmStatus::kConfirmed, Reason::kNone, n, 5'000'000'000, false, false};
}

Outcome MakeOutcome(uint64_t n) {
  return {1'000'000 + n, n, OutcomeKind::kLateFailed, VerifierId::kFraud,
          Reason::kVelocityCount, kCompensationReversed | kCompensationAccountHeld, false,
          10'000 + n % 1000, 1999, PackCurrency("USD"), 4'000'000'000, 4'002'000'000, 7};
}

enum class Encode { kReusedBody, kFreshServerMessage };

// One encode case: `Value` is the engine's type, `Body` its wire message, `field` its number in
// the ServerMessage oneof, `mutable_body` the ServerMessage accessor for the naive way.
template <typename Value, typename Body>
void EncodeFrames(benchmark::State& state, Encode way, int field, Value (*make)(uint64_t),
                  Body* (v1::ServerMessage::*mutable_body)()) {
  std::string out;
  out.reserve(kOutputBytesMax + kFrameBytesMax);
  Body body;
  uint64_t n = 0;
  auto encode_one = [&] {
    const Value value = make(++n);
    bool appended = false;
    if (way == Encode::kReusedBody) {
      wire::ToProto(value, kUnixOffsetNs, &body);
      appended = net::AppendEnvelopeFrame(field, body, kFrameBytesMax, &out);
    } else {
      v1::ServerMessage message;
      wire::ToProto(value, kUnixOffsetNs, (message.*mutable_body)());
      appended = net::AppendFrame(message, kFrameBytesMax, &out);
    }
    if (!appended) std::abort();
    if (out.size() > kOutputBytesMax) out.clear();  // Keeps the capacity.
  };
  encode_one();  // Warm-up: the reused body's strings take their capacity here.
  const uint64_t before = Allocations();
  for (auto _ : state) encode_one();
  benchmark::DoNotOptimize(out.data());
  ReportAllocations(state, before);
}

void BM_EncodeConfirmation(benchmark::State& state, Encode way) {
  EncodeFrames(state, way, v1::ServerMessage::kConfirmation, &MakeConfirmation,
               &v1::ServerMessage::mutable_confirmation);
}
BENCHMARK_CAPTURE(BM_EncodeConfirmation, reused_body, Encode::kReusedBody);
BENCHMARK_CAPTURE(BM_EncodeConfirmation, fresh_server_message, Encode::kFreshServerMessage);

void BM_EncodeOutcome(benchmark::State& state, Encode way) {
  EncodeFrames(state, way, v1::ServerMessage::kOutcome, &MakeOutcome,
               &v1::ServerMessage::mutable_outcome);
}
BENCHMARK_CAPTURE(BM_EncodeOutcome, reused_body, Encode::kReusedBody);
BENCHMARK_CAPTURE(BM_EncodeOutcome, fresh_server_message, Encode::kFreshServerMessage);

}  // namespace
}  // namespace vouch

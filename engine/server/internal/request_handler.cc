#include "engine/server/internal/request_handler.h"

#include <algorithm>
#include <cassert>

#include "absl/strings/str_cat.h"
#include "engine/types/mix.h"
#include "engine/wire/account_convert.h"
#include "engine/wire/convert.h"

namespace vouch::server::internal {
namespace {

static_assert(v1::ErrorCode_ARRAYSIZE == kErrorCodeCount);
static_assert(v1::BalancesResult_ARRAYSIZE ==
              sizeof(ServerStats::balance_reads) / sizeof(ServerStats::balance_reads[0]));

static_assert(v1::CreateAccountResult_ARRAYSIZE ==
              sizeof(ServerStats::account_creations) / sizeof(ServerStats::account_creations[0]));
static_assert(v1::AccountRequestResult_ARRAYSIZE ==
              sizeof(ServerStats::account_lookups) / sizeof(ServerStats::account_lookups[0]));

// Accounts in one CreateAccounts (proto/vouch.proto says so). Any such batch fits a 64 KiB frame
// (an Account encodes in at most 87 bytes as an entry).
constexpr size_t kCreateAccountsMax = 512;
// How long an account request may wait for the journal or the ledger (the proto says 5 s).
constexpr absl::Duration kAccountRequestTimeout = absl::Seconds(5);
// An INVALID or RETRY message is cut to this, so that an answer is never larger than its request
// allows (see OnCreateAccounts).
constexpr size_t kAccountMessageBytesMax = 64;

// The wire result of a ChangeAccount the engine answered with `status` (engine.h names its
// errors per call).
v1::AccountRequestResult ChangeResultOf(const absl::Status& status, v1::AccountAction action) {
  switch (status.code()) {
    case absl::StatusCode::kOk: return v1::ACCOUNT_REQUEST_RESULT_OK;
    case absl::StatusCode::kNotFound: return v1::ACCOUNT_REQUEST_RESULT_NOT_FOUND;
    case absl::StatusCode::kInvalidArgument: return v1::ACCOUNT_REQUEST_RESULT_INVALID;
    case absl::StatusCode::kFailedPrecondition:
      // Closing a closed account succeeds, so CLOSE's precondition is the balance and the
      // transactions in flight; every other action's is that the account is not closed.
      return action == v1::ACCOUNT_ACTION_CLOSE ? v1::ACCOUNT_REQUEST_RESULT_NOT_EMPTY
                                                : v1::ACCOUNT_REQUEST_RESULT_CLOSED;
    default: return v1::ACCOUNT_REQUEST_RESULT_RETRY;
  }
}

std::string Truncated(absl::string_view message) {
  return std::string(message.substr(0, kAccountMessageBytesMax));
}

// ClientMessage's body fields; any other field number, one in a gap included, is skipped as an
// unknown field (a body type newer than this server), and a frame with no body is answered
// ERROR_CODE_UNKNOWN_MESSAGE.
constexpr uint64_t kClientBodyFields = net::EnvelopeFields(
    {v1::ClientMessage::kHello, v1::ClientMessage::kSubmit, v1::ClientMessage::kQuery,
     v1::ClientMessage::kSubscribe, v1::ClientMessage::kPing, v1::ClientMessage::kListHolds,
     v1::ClientMessage::kReleaseHold, v1::ClientMessage::kReadBalances,
     v1::ClientMessage::kQueryAccount, v1::ClientMessage::kCreateAccounts,
     v1::ClientMessage::kLookupAccount, v1::ClientMessage::kChangeAccount,
     v1::ClientMessage::kVerifierHello, v1::ClientMessage::kVerdicts});

constexpr int kRouteBudget = 4096;   // Outcomes routed per turn, so a burst cannot starve reads.
constexpr int kResendBudget = 4096;  // Window entries scanned per resuming connection per turn.
constexpr uint64_t kUnnamedBit = uint64_t{1} << 63;

v1::StateKind ToWire(StateKind kind) {
  switch (kind) {
    case StateKind::kReceived: return v1::STATE_KIND_RECEIVED;
    case StateKind::kRejected: return v1::STATE_KIND_REJECTED;
    case StateKind::kConfirmed: return v1::STATE_KIND_CONFIRMED;
    case StateKind::kHeld: return v1::STATE_KIND_HELD;
    case StateKind::kFraudVerdict: return v1::STATE_KIND_FRAUD_VERDICT;
    case StateKind::kLedgerVerdict: return v1::STATE_KIND_LEDGER_VERDICT;
    case StateKind::kVerified: return v1::STATE_KIND_VERIFIED;
    case StateKind::kLateFailed: return v1::STATE_KIND_LATE_FAILED;
    case StateKind::kLateTimeout: return v1::STATE_KIND_LATE_TIMEOUT;
    case StateKind::kCompensated: return v1::STATE_KIND_COMPENSATED;
    case StateKind::kAccountHeld: return v1::STATE_KIND_ACCOUNT_HELD;
    case StateKind::kLateVerdict: return v1::STATE_KIND_LATE_VERDICT;
    case StateKind::kVerifierVerdict: return v1::STATE_KIND_VERIFIER_VERDICT;
  }
  return v1::STATE_KIND_UNSPECIFIED;
}

// Compares without an early exit, so the time taken does not reveal how much of a guess matched.
bool TokensEqual(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char difference = 0;
  for (size_t i = 0; i < a.size(); ++i) difference |= static_cast<unsigned char>(a[i] ^ b[i]);
  return difference == 0;
}

v1::ErrorCode ToErrorCode(net::FrameError error) {
  return error == net::FrameError::kTooLarge ? v1::ERROR_CODE_FRAME_TOO_LARGE
                                             : v1::ERROR_CODE_MALFORMED_FRAME;
}

const char* FrameErrorMessage(net::FrameError error) {
  switch (error) {
    case net::FrameError::kTooLarge: return "frame length is above the server's maximum";
    case net::FrameError::kMalformedVarint: return "frame length is not a valid varint32";
    case net::FrameError::kUnparsable: return "frame is not a valid ClientMessage";
    case net::FrameError::kNone: break;
  }
  return "frame error";
}

}  // namespace

int OwnerThread(uint64_t session, int io_threads) {
  if (session & kUnnamedBit) return static_cast<int>(session & 0xff);
  return static_cast<int>(session % static_cast<uint64_t>(io_threads));
}

uint64_t NamedSessionKey(std::string_view client_name) {
  uint64_t hash = 0xcbf29ce484222325;  // FNV-1a, finished with Mix64 to spread the bits.
  for (const char c : client_name) hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001b3;
  const uint64_t key = Mix64(hash) & ~kUnnamedBit;
  return key == 0 ? 1 : key;  // 0 is "no origin".
}

uint64_t UnnamedSessionKey(uint64_t serial, int thread) {
  assert(thread >= 0 && thread < 256);
  return kUnnamedBit | (serial << 8) | static_cast<uint64_t>(thread);
}

void IoCounters::AddTo(ServerStats* stats) const {
  auto get = [](const std::atomic<uint64_t>& c) { return c.load(std::memory_order_relaxed); };
  stats->connections_accepted += get(connections_accepted);
  stats->frames_in += get(frames_in);
  stats->frames_out += get(frames_out);
  stats->transactions_in += get(transactions_in);
  stats->queries += get(queries);
  stats->account_queries += get(account_queries);
  stats->pings += get(pings);
  for (int i = 0; i < v1::BalancesResult_ARRAYSIZE; ++i) {
    stats->balance_reads[i] += get(balance_reads[i]);
  }
  for (int i = 0; i < v1::CreateAccountResult_ARRAYSIZE; ++i) {
    stats->account_creations[i] += get(account_creations[i]);
  }
  for (int i = 0; i < v1::AccountRequestResult_ARRAYSIZE; ++i) {
    stats->account_lookups[i] += get(account_lookups[i]);
    stats->account_changes[i] += get(account_changes[i]);
  }
  stats->outcomes_routed += get(outcomes_routed);
  stats->outcomes_unrouted += get(outcomes_unrouted);
  stats->outcomes_resent += get(outcomes_resent);
  stats->held_answers += get(held_answers);
  stats->held_answers_unrouted += get(held_answers_unrouted);
  stats->outcomes_lapped += get(outcomes_lapped);
  stats->outcomes_lost += get(outcomes_lost);
  stats->feed_outcomes += get(feed_outcomes);
  stats->handoffs += get(handoffs);
  stats->resumes += get(resumes);
  stats->resume_epoch_changes += get(resume_epoch_changes);
  stats->partial_frame_timeouts += get(partial_frame_timeouts);
  stats->idle_timeouts += get(idle_timeouts);
  stats->accept_descriptors_exhausted += get(accept_descriptors_exhausted);
  stats->listener_pauses += get(listener_pauses);
  for (int i = 0; i < kErrorCodeCount; ++i) stats->errors[i] += get(errors[i]);
  stats->verify_batches += get(verify_batches);
}


RequestHandler::RequestHandler(int index, Shared* shared)
    : index_(index),
      shared_(shared),
      options_(*shared->options),
      verify_batch_max_(VerifyBatchMax(options_.frame_bytes_max)),
      // Half the output limit: a verifier that holds its whole window unread is not a slow
      // consumer (it is cut off only past what its window allows).
      verifier_window_max_(static_cast<uint32_t>(std::min<size_t>(
          kVerifierWindowMax, options_.outbound_bytes_max / 2 / kVerifyEntryBytesMax))) {
  if (!shared_->remote_verifiers.empty()) scratch_.requests.reserve(verify_batch_max_);
  dirty_.reserve(options_.max_connections);
  sessions_.reserve(options_.max_connections);
  scratch_.snapshot.accounts.reserve(kBalanceReadAccountsMax);
  scratch_.snapshot.currencies.reserve(kCurrencySlotCount);
}

bool RequestHandler::has_work() const {
  return !dirty_.empty() || !resending_.empty() || shared_->window->end() > cursor_ ||
         verifier_backlog_;
}

bool RequestHandler::caught_up() const {
  return cursor_ >= shared_->window->end() && resending_.empty();
}

void RequestHandler::MarkDirty(Connection& connection) {
  if (connection.dirty) return;
  connection.dirty = true;
  dirty_.push_back(&connection);
}

void RequestHandler::Forget(Connection* connection) {
  if (connection->dirty) {
    dirty_.erase(std::find(dirty_.begin(), dirty_.end(), connection));
    connection->dirty = false;
  }
  const auto resending = std::find(resending_.begin(), resending_.end(), connection);
  if (resending != resending_.end()) resending_.erase(resending);
  const auto verifier =
      std::find(verifier_connections_.begin(), verifier_connections_.end(), connection);
  if (verifier != verifier_connections_.end()) verifier_connections_.erase(verifier);
}

void RequestHandler::ResendAll() {
  for (size_t i = 0; i < resending_.size();) {
    Connection* connection = resending_[i];
    ResendStep(*connection);
    if (connection->resend_next == 0) {
      resending_[i] = resending_.back();
      resending_.pop_back();
    } else {
      ++i;
    }
  }
}

void RequestHandler::AwaitTurnAck() {
  if (turn_ack_.empty()) return;
  // False only if the journal failed, which the I/O thread handles right after (it drops this
  // turn's output and sends every connection ERROR_CODE_JOURNAL_FAILED).
  (void)shared_->engine->AwaitAck(turn_ack_);
  turn_ack_ = {};
}

void RequestHandler::HandleFrames(Connection& connection) {
  bool completed_any = false;
  while (connection.state == ConnectionState::kOpen) {
    const char* data = nullptr;
    size_t size = 0;
    const net::FrameDecoder::Result result = connection.decoder.NextFrame(&data, &size);
    if (result == net::FrameDecoder::Result::kNeedMore) break;
    if (result == net::FrameDecoder::Result::kError) {
      const net::FrameError error = connection.decoder.error();
      Fail(connection, ToErrorCode(error),
           error == net::FrameError::kTooLarge
               ? absl::StrCat(FrameErrorMessage(error), " (", options_.frame_bytes_max, " bytes)")
               : std::string(FrameErrorMessage(error)));
      return;
    }
    completed_any = true;
    IoCounters::Add(counters_.frames_in);
    HandleFrame(connection, data, size);
  }
  if (completed_any) connection.last_frame_ns = now_ns_;
  // A slow sender is timed from the first byte of a frame that is still incomplete; a client
  // streaming frames back to back always has a partial one, so completing any restarts the clock.
  if (connection.decoder.buffered_bytes() == 0) {
    connection.partial_since_ns = 0;
  } else if (completed_any || connection.partial_since_ns == 0) {
    connection.partial_since_ns = now_ns_;
  }
}

void RequestHandler::HandleFrame(Connection& connection, const char* data, size_t size) {
  net::EnvelopeBody body;
  if (!net::ParseEnvelopeFields(data, size, kClientBodyFields, &body)) {
    Fail(connection, v1::ERROR_CODE_MALFORMED_FRAME, "frame is not a valid ClientMessage");
    return;
  }
  google::protobuf::MessageLite* message = nullptr;
  switch (body.field) {
    case v1::ClientMessage::kHello: message = &scratch_.hello; break;
    case v1::ClientMessage::kSubmit: message = &scratch_.submit; break;
    case v1::ClientMessage::kQuery: message = &scratch_.query; break;
    case v1::ClientMessage::kSubscribe: message = &scratch_.subscribe; break;
    case v1::ClientMessage::kPing: message = &scratch_.ping; break;
    case v1::ClientMessage::kListHolds: message = &scratch_.list_holds; break;
    case v1::ClientMessage::kReleaseHold: message = &scratch_.release_hold; break;
    case v1::ClientMessage::kReadBalances: message = &scratch_.read_balances; break;
    case v1::ClientMessage::kQueryAccount: message = &scratch_.query_account; break;
    case v1::ClientMessage::kCreateAccounts: message = &scratch_.create_accounts; break;
    case v1::ClientMessage::kLookupAccount: message = &scratch_.lookup_account; break;
    case v1::ClientMessage::kChangeAccount: message = &scratch_.change_account; break;
    case v1::ClientMessage::kVerifierHello: message = &scratch_.verifier_hello; break;
    case v1::ClientMessage::kVerdicts: message = &scratch_.verdicts; break;
  }
  if (message == nullptr) {  // No body field: none, or only ones this server does not know.
    Fail(connection, v1::ERROR_CODE_UNKNOWN_MESSAGE, "ClientMessage has no known body set");
    return;
  }
  const bool hello = body.field == v1::ClientMessage::kHello ||
                     body.field == v1::ClientMessage::kVerifierHello;
  if (!hello && !connection.said_hello) {
    Fail(connection, v1::ERROR_CODE_HELLO_REQUIRED,
         "the first message must be Hello (or VerifierHello for a remote verifier)");
    return;
  }
  if (connection.verifier != nullptr && body.field != v1::ClientMessage::kVerdicts &&
      body.field != v1::ClientMessage::kPing) {
    Fail(connection, v1::ERROR_CODE_INVALID_MESSAGE,
         "a verifier connection sends only Verdicts and Ping");
    return;
  }
  if (connection.verifier == nullptr && body.field == v1::ClientMessage::kVerdicts) {
    Fail(connection, v1::ERROR_CODE_INVALID_MESSAGE,
         "Verdicts is for verifier connections (VerifierHello first)");
    return;
  }
  if (!message->ParseFromArray(body.data, static_cast<int>(body.size))) {
    Fail(connection, v1::ERROR_CODE_MALFORMED_FRAME, "message body does not parse");
    return;
  }
  switch (body.field) {
    case v1::ClientMessage::kHello: OnHello(connection); break;
    case v1::ClientMessage::kSubmit: OnSubmit(connection); break;
    case v1::ClientMessage::kQuery: OnQuery(connection); break;
    case v1::ClientMessage::kSubscribe: OnSubscribe(connection); break;
    case v1::ClientMessage::kPing: OnPing(connection); break;
    case v1::ClientMessage::kListHolds: OnListHolds(connection); break;
    case v1::ClientMessage::kReleaseHold: OnReleaseHold(connection); break;
    case v1::ClientMessage::kReadBalances: OnReadBalances(connection); break;
    case v1::ClientMessage::kCreateAccounts: OnCreateAccounts(connection); break;
    case v1::ClientMessage::kLookupAccount: OnLookupAccount(connection); break;
    case v1::ClientMessage::kChangeAccount: OnChangeAccount(connection); break;
    case v1::ClientMessage::kQueryAccount: OnQueryAccount(connection); break;
    case v1::ClientMessage::kVerifierHello: OnVerifierHello(connection); break;
    case v1::ClientMessage::kVerdicts: OnVerdicts(connection); break;
  }
}

void RequestHandler::OnVerifierHello(Connection& connection) {
  const v1::VerifierHello& hello = scratch_.verifier_hello;
  if (connection.said_hello) {
    Fail(connection, v1::ERROR_CODE_INVALID_MESSAGE,
         "VerifierHello must be the first message of a connection");
    return;
  }
  if (!options_.auth_token.empty() && !TokensEqual(hello.auth_token(), options_.auth_token)) {
    Fail(connection, v1::ERROR_CODE_NOT_AUTHENTICATED,
         "VerifierHello.auth_token is missing or wrong");
    return;
  }
  if (hello.worker_name().size() > options_.client_name_bytes_max) {
    Fail(connection, v1::ERROR_CODE_INVALID_MESSAGE,
         absl::StrCat("VerifierHello.worker_name is longer than ", options_.client_name_bytes_max,
                      " bytes"));
    return;
  }
  if (hello.window() > kVerifierWindowMax) {
    Fail(connection, v1::ERROR_CODE_INVALID_MESSAGE,
         absl::StrCat("VerifierHello.window is above ", kVerifierWindowMax));
    return;
  }
  const RemoteVerifierEntry* entry = nullptr;
  std::string known;
  for (const RemoteVerifierEntry& candidate : shared_->remote_verifiers) {
    if (candidate.hub->name() == hello.verifier()) entry = &candidate;
    absl::StrAppend(&known, known.empty() ? "" : ", ", candidate.hub->name());
  }
  if (entry == nullptr) {
    Fail(connection, v1::ERROR_CODE_UNKNOWN_VERIFIER,
         absl::StrCat("this server runs no remote verifier named \"",
                      hello.verifier().substr(0, 64), "\" (it runs: ",
                      known.empty() ? "none" : known, ")"));
    return;
  }
  const uint32_t window = std::min(
      hello.window() == 0 ? kVerifierWindowDefault : hello.window(), verifier_window_max_);
  connection.said_hello = true;
  connection.verifier = entry->hub;
  connection.client_name = hello.worker_name();
  entry->hub->Attach(connection.serial, index_, window);
  verifier_connections_.push_back(&connection);
  v1::VerifierWelcome& welcome = scratch_.verifier_welcome;
  welcome.set_verifier(wire::ToProto(entry->id));
  welcome.set_epoch(shared_->epoch);
  welcome.set_window(window);
  welcome.set_batch_max(static_cast<uint32_t>(verify_batch_max_));
  welcome.set_frame_bytes_max(static_cast<uint32_t>(options_.frame_bytes_max));
  welcome.set_deadline_ns(shared_->engine->options().verification_deadline_ns);
  welcome.set_policy(static_cast<uint32_t>(entry->policy));
  Append(connection, v1::ServerMessage::kVerifierWelcome, welcome);
  if (shared_->event_log != nullptr) {
    shared_->event_log->Event(
        "verifier_connected",
        absl::StrCat(entry->hub->name(), " (connection ", connection.serial, ", worker \"",
                     connection.client_name, "\", window ", window, ")"));
  }
}

void RequestHandler::OnVerdicts(Connection& connection) {
  const v1::Verdicts& verdicts = scratch_.verdicts;
  for (const v1::Verdict& verdict : verdicts.verdicts()) {
    if (verdict.code() > 0xFFFF) {
      Fail(connection, v1::ERROR_CODE_INVALID_MESSAGE,
           absl::StrCat("Verdict.code ", verdict.code(), " (seq ", verdict.seq(),
                        ") is above 65535"));
      return;
    }
  }
  for (const v1::Verdict& verdict : verdicts.verdicts()) {
    connection.verifier->Answer(connection.serial, verdict.seq(),
                                static_cast<uint16_t>(verdict.code()), now_ns_);
  }
}

void RequestHandler::FeedVerifiers() {
  verifier_backlog_ = false;
  const int64_t offset_ns = shared_->mono_to_unix_offset_ns;
  const int64_t deadline_ns = shared_->engine->options().verification_deadline_ns;
  for (Connection* connection : verifier_connections_) {
    if (connection->state != ConnectionState::kOpen) continue;
    std::vector<RemoteVerifier::Request>& requests = scratch_.requests;
    requests.clear();
    const size_t taken =
        connection->verifier->Take(connection->serial, verify_batch_max_, now_ns_, &requests);
    if (taken == 0) continue;
    if (taken == verify_batch_max_) verifier_backlog_ = true;
    v1::VerifyBatch& batch = scratch_.verify_batch;
    batch.Clear();  // Keeps the allocated requests for reuse.
    for (const RemoteVerifier::Request& request : requests) {
      v1::VerifyRequest* out = batch.add_requests();
      out->set_seq(request.seq);
      wire::ToProto(request.txn, out->mutable_transaction());
      out->set_confirmed_unix_ns(request.confirmed_ns + offset_ns);
      out->set_deadline_unix_ns(request.confirmed_ns + deadline_ns + offset_ns);
      out->set_redelivered(request.redelivered);
    }
    Append(*connection, v1::ServerMessage::kVerifyBatch, batch);
    IoCounters::Add(counters_.verify_batches);
  }
}

void RequestHandler::OnHello(Connection& connection) {
  const v1::Hello& hello = scratch_.hello;
  if (connection.said_hello) {
    Fail(connection, v1::ERROR_CODE_INVALID_MESSAGE, "Hello was already received");
    return;
  }
  if (!options_.auth_token.empty() && !TokensEqual(hello.auth_token(), options_.auth_token)) {
    Fail(connection, v1::ERROR_CODE_NOT_AUTHENTICATED, "Hello.auth_token is missing or wrong");
    return;
  }
  if (hello.client_name().size() > options_.client_name_bytes_max) {
    Fail(connection, v1::ERROR_CODE_INVALID_MESSAGE,
         absl::StrCat("Hello.client_name is longer than ", options_.client_name_bytes_max,
                      " bytes"));
    return;
  }
  const bool resuming = hello.resume() || hello.resume_from_seq() != 0;
  if (hello.client_name().empty() && resuming) {
    Fail(connection, v1::ERROR_CODE_INVALID_MESSAGE,
         "Hello.resume needs a client_name: only named sessions can be resumed");
    return;
  }
  connection.said_hello = true;
  connection.client_name = hello.client_name();
  connection.resuming = resuming;
  connection.resume_from_seq = hello.resume_from_seq();
  connection.resume_epoch = hello.epoch();
  connection.session = connection.client_name.empty()
                           ? UnnamedSessionKey(connection.serial, index_)
                           : NamedSessionKey(connection.client_name);
  if (OwnerThread(connection.session, static_cast<int>(shared_->threads.size())) != index_) {
    connection.state = ConnectionState::kHandingOff;  // Stops HandleFrames; moved in Reap.
    handing_off_.push_back(&connection);
    return;
  }
  BindSession(connection);
}

void RequestHandler::BindSession(Connection& connection) {
  auto [it, inserted] = sessions_.try_emplace(connection.session, &connection);
  if (!inserted) {
    Connection& previous = *it->second;
    it->second = &connection;
    Fail(previous, v1::ERROR_CODE_SESSION_TAKEN_OVER,
         absl::StrCat("a newer connection said Hello as \"", connection.client_name, "\""));
  }
  if (connection.resuming && !StartResume(connection)) return;
  Welcome(connection);
}

// Checks the resume position (see Hello in vouch.proto) and queues the resend; false after a
// refusal.
bool RequestHandler::StartResume(Connection& connection) {
  IoCounters::Add(counters_.resumes);
  if (connection.resume_epoch != 0 && connection.resume_epoch != shared_->epoch) {
    // The position was counted in another sequence space: it names nothing here.
    IoCounters::Add(counters_.resume_epoch_changes);
    connection.resume_from_seq = 0;
  }
  const Sequence from = connection.resume_from_seq;
  // Every Outcome.seq a client can have seen under this epoch: decided in this run, or
  // confirmed before the restart (a journaled outcome may be decided again after it).
  const Sequence highest =
      std::max<Sequence>(shared_->window->end() - 1, shared_->recovered_confirmed);
  if (from > highest) {
    Fail(connection, v1::ERROR_CODE_RESUME_AHEAD,
         absl::StrCat("resume_from_seq ", from, " is above ", highest,
                      ", the highest seq of this server's history (epoch ",
                      absl::Hex(shared_->epoch, absl::kZeroPad16),
                      "); resume from 0 to get every outcome retained"));
    return false;
  }
  const Sequence oldest = shared_->window->oldest_readable();
  if (from != 0 && from + 1 < oldest) {
    Fail(connection, v1::ERROR_CODE_RESUME_WINDOW_EXCEEDED,
         absl::StrCat("resume_from_seq ", from,
                      " is older than the oldest outcome the server keeps (seq ", oldest, ")"));
    return false;
  }
  // Outcomes below cursor_ were routed (to no one, or to the previous connection); resend the
  // session's ones above the position. Newer outcomes wait in the window until the resend has
  // caught up with the cursor, so the connection sees its outcomes in sequence order.
  connection.resend_next = std::max<Sequence>(from + 1, oldest);
  resending_.push_back(&connection);
  return true;
}

// Sent before anything else the session gets: its resend starts later in this turn.
void RequestHandler::Welcome(Connection& connection) {
  v1::Welcome& welcome = scratch_.welcome;
  welcome.set_epoch(shared_->epoch);
  welcome.set_resuming(connection.resuming);
  welcome.set_resume_from_seq(connection.resuming ? connection.resume_from_seq : 0);
  welcome.set_oldest_retained_seq(shared_->window->oldest_readable());
  welcome.set_frame_bytes_max(static_cast<uint32_t>(options_.frame_bytes_max));
  welcome.set_submit_batch_max(static_cast<uint32_t>(options_.submit_batch_max));
  Append(connection, v1::ServerMessage::kWelcome, welcome);
}

void RequestHandler::ResendStep(Connection& connection) {
  if (connection.state != ConnectionState::kOpen) {
    connection.resend_next = 0;
    return;
  }
  for (int scanned = 0; scanned < kResendBudget && connection.resend_next < cursor_; ++scanned) {
    if (connection.pending_bytes() > options_.outbound_bytes_max / 2) return;  // Next turn.
    const Sequence seq = connection.resend_next;
    const std::optional<Outcome> outcome = shared_->window->Read(seq);
    if (!outcome) {
      Fail(connection, v1::ERROR_CODE_RESUME_WINDOW_EXCEEDED,
           absl::StrCat("outcome seq ", seq, " left the server's window during the resend"));
      connection.resend_next = 0;
      return;
    }
    // A held transaction's answer was its Confirmation: nothing to resend.
    if (outcome->origin == connection.session && !outcome->held) {
      wire::ToProto(*outcome, shared_->mono_to_unix_offset_ns, &scratch_.outcome);
      AppendOutcome(connection, scratch_.outcome);
      IoCounters::Add(counters_.outcomes_resent);
    }
    ++connection.resend_next;
  }
  if (connection.resend_next >= cursor_) connection.resend_next = 0;  // Caught up: live now.
}

void RequestHandler::OnSubmit(Connection& connection) {
  const v1::Submit& submit = scratch_.submit;
  const int count = submit.transactions_size();
  if (count == 0 || static_cast<size_t>(count) > options_.submit_batch_max) {
    Fail(connection, v1::ERROR_CODE_INVALID_MESSAGE,
         absl::StrCat("Submit must carry 1..", options_.submit_batch_max,
                      " transactions; it carried ", count));
    return;
  }
  IoCounters::Add(counters_.transactions_in, static_cast<uint64_t>(count));
  for (const v1::Transaction& in : submit.transactions()) {
    Transaction txn;
    // A currency that is not three letters comes out as 0, which the engine rejects as
    // UNKNOWN_CURRENCY in its own order of checks, so the answer does not depend on the path.
    (void)wire::FromProto(in, &txn);
    // The journal wait (ack policy written/durable) is taken once per turn, before the
    // confirmations are written out: every Submit of the turn shares one sync (group commit).
    // A held transaction is answered when its outcome is routed (see the header).
    const Confirmation confirmation = shared_->engine->Submit(
        txn, connection.session, AckWait::kCaller, HeldAnswer::kLater);
    if (confirmation.status != ConfirmStatus::kPending) turn_ack_.Cover(confirmation.ack);
    if ((confirmation.reason == Reason::kDailyAmountLimit ||
         confirmation.reason == Reason::kDailyCountLimit) &&
        !confirmation.duplicate && shared_->event_log != nullptr) {
      // A limit crossing is an operator's event (rare by design); a duplicate told it already.
      shared_->event_log->Event(
          "daily_limit", absl::StrCat("account ", txn.source_account, " id ", txn.id, " ",
                                      std::string(ReasonName(confirmation.reason))));
    }
    QueueOrSendAnswer(connection, confirmation);
    if (connection.state != ConnectionState::kOpen) return;
  }
}

// Keeps Confirmations in submission order: behind a pending held answer, later ones wait.
void RequestHandler::QueueOrSendAnswer(Connection& connection, const Confirmation& confirmation) {
  if (confirmation.status != ConfirmStatus::kPending && connection.queued_count() == 0) {
    SendConfirmation(connection, confirmation);
    return;
  }
  // Waiting answers are output too: bounded like it (Flush's slow-consumer cap).
  constexpr size_t kQueuedAnswerBytes = 48;  // About one encoded Confirmation frame.
  if (connection.pending_bytes() + (connection.queued_count() + 1) * kQueuedAnswerBytes >
      options_.outbound_bytes_max) {
    Fail(connection, v1::ERROR_CODE_SLOW_CONSUMER,
         absl::StrCat("more than ", options_.outbound_bytes_max,
                      " bytes of answers are waiting behind held transactions"));
    return;
  }
  connection.queued_answers.push_back(confirmation);
}

void RequestHandler::SendConfirmation(Connection& connection, const Confirmation& confirmation) {
  wire::ToProto(confirmation, shared_->mono_to_unix_offset_ns, &scratch_.confirmation);
  Append(connection, v1::ServerMessage::kConfirmation, scratch_.confirmation);
}

// The outcome of a held transaction this connection submitted: its final Confirmation.
void RequestHandler::AnswerHeld(Connection& connection, const Outcome& outcome) {
  // Outcomes come in seq order and one connection's held transactions were sequenced in
  // submission order, so the first pending answer is the one this outcome decides, if any.
  auto& queue = connection.queued_answers;
  size_t i = connection.queued_head;
  while (i < queue.size() && queue[i].status != ConfirmStatus::kPending) ++i;
  if (i == queue.size() || queue[i].seq != outcome.seq) {
    IoCounters::Add(counters_.held_answers_unrouted);  // Submitted on an earlier connection.
    return;
  }
  queue[i] = Engine::FinalHeldAnswer(queue[i], outcome);
  IoCounters::Add(counters_.held_answers);
  // The outcome record is kept, and so is the confirmed record before it; waiting for it is
  // then free, and keeps "every answer of a turn is acked first" true without exceptions.
  turn_ack_.Cover({outcome.seq, 0});
  SendQueuedAnswers(connection);
}

void RequestHandler::SendQueuedAnswers(Connection& connection) {
  auto& queue = connection.queued_answers;
  while (connection.queued_head < queue.size() &&
         queue[connection.queued_head].status != ConfirmStatus::kPending) {
    SendConfirmation(connection, queue[connection.queued_head++]);
  }
  if (connection.queued_head == queue.size()) {
    queue.clear();  // Keeps the capacity.
    connection.queued_head = 0;
  }
}

void RequestHandler::OnQuery(Connection& connection) {
  IoCounters::Add(counters_.queries);
  const uint64_t id = scratch_.query.transaction_id();
  v1::Status& status = scratch_.status;
  status.Clear();
  status.set_transaction_id(id);
  if (const auto found = shared_->engine->Query(id)) {
    status.set_found(true);
    const std::string_view attributes = found->attributes.view();
    status.set_attributes(attributes.data(), attributes.size());
    for (const StateChange& change : found->history) {
      v1::StateChange* out = status.add_history();
      out->set_state(ToWire(change.kind));
      out->set_unix_ns(change.at_ns + shared_->mono_to_unix_offset_ns);
      out->set_reason(wire::ToProto(change.reason));
      out->set_verifier(wire::ToProto(change.verifier));
      out->set_pass(change.pass);
      out->set_verifier_reason(change.verifier_code);
    }
  }
  Append(connection, v1::ServerMessage::kStatus, status);
}

v1::AccountTransactionState ToWire(AccountTxnState state) {
  switch (state) {
    case AccountTxnState::kPending: return v1::ACCOUNT_TRANSACTION_STATE_PENDING;
    case AccountTxnState::kHeld: return v1::ACCOUNT_TRANSACTION_STATE_HELD;
    case AccountTxnState::kVerified: return v1::ACCOUNT_TRANSACTION_STATE_VERIFIED;
    case AccountTxnState::kLateFailed: return v1::ACCOUNT_TRANSACTION_STATE_LATE_FAILED;
    case AccountTxnState::kLateTimeout: return v1::ACCOUNT_TRANSACTION_STATE_LATE_TIMEOUT;
    case AccountTxnState::kRejected: return v1::ACCOUNT_TRANSACTION_STATE_REJECTED;
  }
  return v1::ACCOUNT_TRANSACTION_STATE_UNSPECIFIED;
}

// The longest AccountTransactionEntry (every varint at its longest, a 3-letter currency, its
// own tag and length) and the rest of the answer (AccountTransactions' other fields, the
// envelope and the frame's length): a page of (frame_bytes_max - kPageOverheadBytes) /
// kEntryBytesMax entries always fits in one frame.
constexpr size_t kEntryBytesMax = 94;
constexpr size_t kPageOverheadBytes = 64;

// Reads the engine's lock-free index (no wait); the page's vector is allocated per query, as
// Query's history is.
void RequestHandler::OnQueryAccount(Connection& connection) {
  IoCounters::Add(counters_.account_queries);
  const v1::QueryAccount& request = scratch_.query_account;
  if (request.account() == 0) {
    Fail(connection, v1::ERROR_CODE_INVALID_MESSAGE, "QueryAccount.account must be non-zero");
    return;
  }
  if (request.since_unix_ns() != 0 && request.until_unix_ns() != 0 &&
      request.until_unix_ns() < request.since_unix_ns()) {
    Fail(connection, v1::ERROR_CODE_INVALID_MESSAGE,
         "QueryAccount.until_unix_ns is below since_unix_ns");
    return;
  }
  const size_t fits =
      std::max<size_t>(1, (options_.frame_bytes_max - kPageOverheadBytes) / kEntryBytesMax);
  size_t limit = request.limit() == 0 ? kAccountTransactionsLimitMax : request.limit();
  limit = std::min({limit, kAccountTransactionsLimitMax, fits});
  const AccountTransactionsPage page = shared_->engine->AccountTransactions(
      {request.account(), request.since_unix_ns(), request.until_unix_ns(), request.before_seq(),
       limit});
  v1::AccountTransactions& answer = scratch_.account_transactions;
  answer.Clear();
  answer.set_account(request.account());
  answer.set_more(page.more);
  answer.set_next_before_seq(page.next_before_seq);
  answer.set_oldest_kept_seq(page.oldest_kept_seq);
  for (const AccountTransaction& txn : page.transactions) {
    v1::AccountTransactionEntry* out = answer.add_transactions();
    out->set_seq(txn.seq);
    out->set_transaction_id(txn.id);
    out->set_source_account(txn.source_account);
    out->set_destination_account(txn.destination_account);
    out->set_amount(txn.amount_minor);
    out->set_currency(CurrencyToString(txn.currency));
    out->set_debit(txn.debit);
    out->set_held(txn.held);
    out->set_received_unix_ns(txn.received_unix_ns);
    out->set_state(ToWire(txn.state));
    out->set_reason(wire::ToProto(txn.reason));
    out->set_verifier(wire::ToProto(txn.verifier));
    out->set_verifier_reason(txn.verifier_code);
    out->set_decided_unix_ns(txn.decided_unix_ns);
  }
  Append(connection, v1::ServerMessage::kAccountTransactions, answer);
}

void RequestHandler::OnSubscribe(Connection& connection) {
  connection.include_verified = scratch_.subscribe.include_verified();
  if (!connection.subscribed) {
    connection.subscribed = true;
    subscribers_.push_back(&connection);
  }
}

void RequestHandler::OnPing(Connection& connection) {
  IoCounters::Add(counters_.pings);
  v1::Pong& pong = scratch_.pong;
  pong.set_nonce(scratch_.ping.nonce());
  pong.set_client_time_ns(scratch_.ping.client_time_ns());
  pong.set_server_time_ns(now_ns_ + shared_->mono_to_unix_offset_ns);
  Append(connection, v1::ServerMessage::kPong, pong);
}

// Operator requests: rare, so they may allocate (the hold list).
void RequestHandler::OnListHolds(Connection& connection) {
  std::vector<uint64_t> accounts = shared_->engine->Holds();
  std::sort(accounts.begin(), accounts.end());
  v1::Holds& holds = scratch_.holds;
  holds.Clear();
  for (const uint64_t account : accounts) holds.add_accounts(account);
  Append(connection, v1::ServerMessage::kHolds, holds);
}

void RequestHandler::OnReleaseHold(Connection& connection) {
  const uint64_t account = scratch_.release_hold.account();
  v1::HoldReleased& released = scratch_.hold_released;
  released.set_account(account);
  const absl::StatusOr<bool> was_held = shared_->engine->ReleaseHold(account);
  released.set_was_held(was_held.value_or(false));
  released.set_refused(was_held.ok() ? "" : std::string(was_held.status().message()));
  if (released.was_held() && shared_->event_log != nullptr) {
    shared_->event_log->HoldReleased(account);
  }
  Append(connection, v1::ServerMessage::kHoldReleased, released);
}

// Waits for the ledger stage (see the class comment). The answer may allocate (currency
// strings, a first use of the reused message); reads are occasional.
void RequestHandler::OnReadBalances(Connection& connection) {
  const auto& accounts = scratch_.read_balances.accounts();
  if (static_cast<size_t>(accounts.size()) > kBalanceReadAccountsMax) {
    Fail(connection, v1::ERROR_CODE_INVALID_MESSAGE,
         absl::StrCat("ReadBalances names at most ", kBalanceReadAccountsMax, " accounts; it named ",
                      accounts.size()));
    return;
  }
  const absl::Status status = shared_->engine->ReadBalances(
      absl::MakeConstSpan(accounts.data(), static_cast<size_t>(accounts.size())),
      &scratch_.snapshot, absl::Nanoseconds(options_.balance_read_timeout_ns));
  v1::Balances& balances = scratch_.balances;
  balances.Clear();
  switch (status.code()) {
    case absl::StatusCode::kOk: FillBalances(&balances); break;
    case absl::StatusCode::kDeadlineExceeded:
      balances.set_result(v1::BALANCES_RESULT_TIMEOUT);
      break;
    case absl::StatusCode::kUnavailable:
      // Every slot taken, or the engine stopping, which it does only after the server left
      // kServing. acquire: pairs with the server's release of the phase.
      balances.set_result(shared_->phase.load(std::memory_order_acquire) == Phase::kServing
                              ? v1::BALANCES_RESULT_BUSY
                              : v1::BALANCES_RESULT_UNAVAILABLE);
      break;
    default:
      assert(false && "ReadBalances' other errors are checked above");
      balances.set_result(v1::BALANCES_RESULT_UNAVAILABLE);
  }
  IoCounters::Add(counters_.balance_reads[balances.result()]);
  Append(connection, v1::ServerMessage::kBalances, balances);
}

// Account requests (see the class comment): rare, so they may allocate.
void RequestHandler::OnCreateAccounts(Connection& connection) {
  const auto& accounts = scratch_.create_accounts.accounts();
  if (accounts.empty() || static_cast<size_t>(accounts.size()) > kCreateAccountsMax) {
    Fail(connection, v1::ERROR_CODE_INVALID_MESSAGE,
         absl::StrCat("CreateAccounts carries 1..", kCreateAccountsMax, " accounts; it carried ",
                      accounts.size()));
    return;
  }
  v1::AccountsCreated& created = scratch_.accounts_created;
  created.Clear();
  std::vector<NewAccount>& valid = scratch_.new_accounts;
  valid.clear();
  // Entries the wire check refused are answered INVALID here; the rest go to the engine in one
  // call, in order, and their results are filled in after it.
  for (const v1::Account& account : accounts) {
    NewAccount fields;
    const std::string invalid = wire::FromProto(account, &fields);
    v1::AccountsCreated::Entry* entry = created.add_results();
    entry->set_id(account.id());
    if (!invalid.empty()) {
      entry->set_result(v1::CREATE_ACCOUNT_RESULT_INVALID);
      entry->set_message(Truncated(invalid));
    } else {
      valid.push_back(fields);
    }
  }
  std::vector<CreateResult>& results = scratch_.create_results;
  results.clear();
  const absl::Status status =
      valid.empty() ? absl::OkStatus()
                    : shared_->engine->CreateAccounts(valid, &results, kAccountRequestTimeout);
  size_t next = 0;
  for (v1::AccountsCreated::Entry& entry : *created.mutable_results()) {
    if (entry.result() == v1::CREATE_ACCOUNT_RESULT_INVALID) continue;
    if (!status.ok()) {
      entry.set_result(v1::CREATE_ACCOUNT_RESULT_RETRY);
      entry.set_message(Truncated(status.message()));
    } else {
      assert(next < results.size());
      entry.set_result(wire::ToProto(results[next]));
      if (results[next] == CreateResult::kInvalid) {
        entry.set_message("refused by the engine: see Account for the rules");
      }
    }
    ++next;
  }
  for (const v1::AccountsCreated::Entry& entry : created.results()) {
    IoCounters::Add(counters_.account_creations[entry.result()]);
  }
  // Without messages the answer is smaller than the request (an entry's id and result take no
  // more room than the request's id and currency), which fitted in a frame.
  constexpr size_t kEnvelopeBytesMax = 16;  // Field tag and varint length around the body.
  if (created.ByteSizeLong() + kEnvelopeBytesMax > options_.frame_bytes_max) {
    for (v1::AccountsCreated::Entry& entry : *created.mutable_results()) entry.clear_message();
  }
  Append(connection, v1::ServerMessage::kAccountsCreated, created);
}

void RequestHandler::OnLookupAccount(Connection& connection) {
  const uint64_t id = scratch_.lookup_account.account();
  v1::AccountInfo& info = scratch_.account_info;
  info.Clear();
  info.set_account(id);
  const absl::StatusOr<AccountInfo> found =
      shared_->engine->LookupAccount(id, kAccountRequestTimeout);
  if (found.ok()) {
    info.set_result(v1::ACCOUNT_REQUEST_RESULT_OK);
    wire::ToProto(found->fields, info.mutable_fields());
    info.set_state(wire::ToProto(found->state));
    info.set_on_hold(found->on_hold);
    info.set_balance_minor(found->balance_minor);
    info.set_unverified_count(found->unverified_count);
    info.set_unverified_minor(found->unverified_minor);
    for (const AccountChange& change : found->history) {
      v1::AccountChange* out = info.add_history();
      out->set_kind(wire::ToProto(change.kind));
      out->set_unix_ns(change.at_ns + shared_->mono_to_unix_offset_ns);
    }
  } else if (found.status().code() == absl::StatusCode::kNotFound) {
    info.set_result(v1::ACCOUNT_REQUEST_RESULT_NOT_FOUND);
  } else {
    info.set_result(v1::ACCOUNT_REQUEST_RESULT_RETRY);
    info.set_message(std::string(found.status().message()));
  }
  IoCounters::Add(counters_.account_lookups[info.result()]);
  Append(connection, v1::ServerMessage::kAccountInfo, info);
}

void RequestHandler::OnChangeAccount(Connection& connection) {
  const v1::ChangeAccount& request = scratch_.change_account;
  v1::AccountChanged& changed = scratch_.account_changed;
  changed.Clear();
  changed.set_account(request.account());
  changed.set_action(request.action());
  Engine& engine = *shared_->engine;
  absl::Status status;
  std::string invalid;
  switch (request.action()) {
    case v1::ACCOUNT_ACTION_FREEZE: status = engine.FreezeAccount(request.account()); break;
    case v1::ACCOUNT_ACTION_UNFREEZE: status = engine.UnfreezeAccount(request.account()); break;
    case v1::ACCOUNT_ACTION_CLOSE:
      status = engine.CloseAccount(request.account(), kAccountRequestTimeout);
      break;
    case v1::ACCOUNT_ACTION_SET_LIMITS: {
      AccountLimits limits;
      invalid = wire::FromProto(request.limits(), &limits);
      if (invalid.empty()) status = engine.SetAccountLimits(request.account(), limits);
      break;
    }
    default:
      invalid = absl::StrCat("unknown action ", static_cast<int>(request.action()));
  }
  if (!invalid.empty()) {
    changed.set_result(v1::ACCOUNT_REQUEST_RESULT_INVALID);
    changed.set_message(invalid);
  } else {
    changed.set_result(ChangeResultOf(status, request.action()));
    if (!status.ok()) changed.set_message(std::string(status.message()));
  }
  IoCounters::Add(counters_.account_changes[changed.result()]);
  if (changed.result() == v1::ACCOUNT_REQUEST_RESULT_OK && shared_->event_log != nullptr) {
    shared_->event_log->AccountChanged(request.account(),
                                       v1::AccountAction_Name(request.action()));
  }
  Append(connection, v1::ServerMessage::kAccountChanged, changed);
}

void RequestHandler::FillBalances(v1::Balances* balances) {
  const BalanceSnapshot& snapshot = scratch_.snapshot;
  balances->set_result(v1::BALANCES_RESULT_OK);
  balances->set_checked_below_seq(snapshot.checked_below);
  balances->set_truncated(snapshot.truncated);
  for (const ledger::AccountView& view : snapshot.accounts) {
    v1::AccountBalance* out = balances->add_accounts();
    out->set_account(view.id);
    out->set_currency(CurrencyToString(view.currency));
    out->set_balance_minor(view.balance_minor);
    out->set_overdraft_limit_minor(view.overdraft_limit_minor);
  }
  for (const CurrencyBalance& currency : snapshot.currencies) {
    v1::CurrencyTotal* out = balances->add_currencies();
    out->set_currency(CurrencyToString(currency.currency));
    out->set_total_minor(currency.total_minor);
    out->set_clearing_minor(currency.clearing_minor);
  }
  // A small frame_bytes_max may not hold every account: send what fits and say so.
  constexpr size_t kEnvelopeBytesMax = 16;  // Field tag and varint length around the body.
  while (balances->accounts_size() > 0 &&
         balances->ByteSizeLong() + kEnvelopeBytesMax > options_.frame_bytes_max) {
    balances->mutable_accounts()->RemoveLast();
    balances->set_truncated(true);
  }
}

void RequestHandler::RouteOutcomes() {
  const Sequence end = shared_->window->end();
  int routed = 0;
  for (; cursor_ < end && routed < kRouteBudget; ++cursor_, ++routed) {
    std::optional<Outcome> outcome = shared_->window->Read(cursor_);
    if (!outcome.has_value()) {
      // Lapped: the writer does not wait for readers (outcome_window.h).
      outcome = shared_->engine->FinalOutcome(cursor_);
      if (!outcome.has_value()) {
        CutOffLapped(cursor_);
        continue;
      }
      IoCounters::Add(counters_.outcomes_lapped);
    }
    Route(*outcome);
  }
}

// Outcome `seq` is gone before this thread routed it, and nobody knows whose it was: every
// session and subscriber of this thread may have missed it.
void RequestHandler::CutOffLapped(Sequence seq) {
  IoCounters::Add(counters_.outcomes_lost);
  // Every connection that said Hello here is in sessions_ (subscribers too). Rare: may allocate.
  std::vector<Connection*> bound;
  for (const auto& [session, connection] : sessions_) bound.push_back(connection);
  for (Connection* connection : bound) {
    if (connection->state != ConnectionState::kOpen) continue;
    Fail(*connection, v1::ERROR_CODE_SLOW_CONSUMER,
         absl::StrCat("the server fell more than its retained outcomes behind: outcome seq ", seq,
                      " was lost before it was routed; Query or resubmit the ids still open"));
  }
}

void RequestHandler::Route(const Outcome& outcome) {
  Connection* owner = nullptr;
  if (OwnerThread(outcome.origin, static_cast<int>(shared_->threads.size())) == index_) {
    const auto it = sessions_.find(outcome.origin);
    if (it != sessions_.end()) owner = it->second;
    if (owner == nullptr) {
      IoCounters::Add(outcome.held ? counters_.held_answers_unrouted : counters_.outcomes_unrouted);
    }
  }
  if (outcome.held) {
    // Its answer, not an Outcome, and not a late failure: no feed (see the header).
    if (owner != nullptr) AnswerHeld(*owner, outcome);
    return;
  }
  const bool failure = outcome.kind != OutcomeKind::kVerified;
  bool converted = false;
  if (owner != nullptr && owner->resend_next == 0) {
    wire::ToProto(outcome, shared_->mono_to_unix_offset_ns, &scratch_.outcome);
    converted = true;
    AppendOutcome(*owner, scratch_.outcome);
    IoCounters::Add(counters_.outcomes_routed);
  }
  // A resuming owner picks this outcome up from the window when its resend reaches it.
  for (Connection* subscriber : subscribers_) {
    if (subscriber == owner || !(failure || subscriber->include_verified)) continue;
    if (!converted) {
      wire::ToProto(outcome, shared_->mono_to_unix_offset_ns, &scratch_.outcome);
      converted = true;
    }
    AppendOutcome(*subscriber, scratch_.outcome);
    IoCounters::Add(counters_.feed_outcomes);
  }
}

void RequestHandler::AppendOutcome(Connection& connection, const v1::Outcome& outcome) {
  Append(connection, v1::ServerMessage::kOutcome, outcome);
}

void RequestHandler::Append(Connection& connection, int field,
                      const google::protobuf::MessageLite& body) {
  const size_t before_bytes = connection.outbound.size();
  const bool appended =
      net::AppendEnvelopeFrame(field, body, options_.frame_bytes_max, &connection.outbound);
  assert(appended && "server messages are far below the frame maximum");
  (void)appended;
  IoCounters::Add(counters_.frames_out);
  // A journal failure drops what this turn appended (IoThread::FailAllJournalFailed).
  if (!connection.dirty) connection.turn_start_bytes = before_bytes;
  MarkDirty(connection);
}

void RequestHandler::Fail(Connection& connection, v1::ErrorCode code, absl::string_view message) {
  assert(connection.state == ConnectionState::kOpen);
  IoCounters::Add(counters_.errors[code]);
  if (shared_->event_log != nullptr) {
    shared_->event_log->Event(
        "connection_error", absl::StrCat(v1::ErrorCode_Name(code), ": ", message,
                                         " (connection ", connection.serial, ")"));
  }
  scratch_.error.set_code(code);
  scratch_.error.set_message(message.data(), message.size());
  Append(connection, v1::ServerMessage::kError, scratch_.error);
  Detach(connection);
  // Lingering close: the Error is flushed, then the write side shut, and input is discarded
  // until the peer closes. Closing at once with unread input would reset the connection, and a
  // reset can destroy the Error before the peer reads it.
  connection.state = ConnectionState::kClosing;
  connection.closing_since_ns = now_ns_;
}

// Stops routing to the connection: it is leaving this thread or closing.
void RequestHandler::Detach(Connection& connection) {
  const auto it = sessions_.find(connection.session);
  if (it != sessions_.end() && it->second == &connection) sessions_.erase(it);
  if (connection.subscribed) {
    subscribers_.erase(std::find(subscribers_.begin(), subscribers_.end(), &connection));
    connection.subscribed = false;
  }
  connection.resend_next = 0;  // The resend loop drops it from resending_.
  if (connection.verifier != nullptr) {
    connection.verifier->Detach(connection.serial);  // Its unanswered requests go to another.
    verifier_connections_.erase(
        std::find(verifier_connections_.begin(), verifier_connections_.end(), &connection));
    if (shared_->event_log != nullptr) {
      shared_->event_log->Event("verifier_disconnected",
                                absl::StrCat(connection.verifier->name(), " (connection ",
                                             connection.serial, ")"));
    }
    connection.verifier = nullptr;
  }
}

}  // namespace vouch::server::internal

#include "client/client.h"

#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/internal/socket.h"
#include "engine/types/clock.h"

namespace vouch::client {
namespace {

// The oneof field numbers of the envelopes (proto/vouch.proto).
constexpr int kHelloField = v1::ClientMessage::kHelloFieldNumber;
constexpr int kSubmitField = v1::ClientMessage::kSubmitFieldNumber;
constexpr int kQueryField = v1::ClientMessage::kQueryFieldNumber;
constexpr int kSubscribeField = v1::ClientMessage::kSubscribeFieldNumber;
constexpr int kPingField = v1::ClientMessage::kPingFieldNumber;
constexpr int kReadBalancesField = v1::ClientMessage::kReadBalancesFieldNumber;
constexpr int kCreateAccountsField = v1::ClientMessage::kCreateAccountsFieldNumber;
constexpr int kLookupAccountField = v1::ClientMessage::kLookupAccountFieldNumber;
constexpr int kChangeAccountField = v1::ClientMessage::kChangeAccountFieldNumber;
constexpr int kQueryAccountField = v1::ClientMessage::kQueryAccountFieldNumber;
constexpr int kConfirmationField = v1::ServerMessage::kConfirmationFieldNumber;
constexpr int kOutcomeField = v1::ServerMessage::kOutcomeFieldNumber;
constexpr int kStatusField = v1::ServerMessage::kStatusFieldNumber;
constexpr int kErrorField = v1::ServerMessage::kErrorFieldNumber;
constexpr int kPongField = v1::ServerMessage::kPongFieldNumber;
constexpr int kBalancesField = v1::ServerMessage::kBalancesFieldNumber;
constexpr int kWelcomeField = v1::ServerMessage::kWelcomeFieldNumber;
constexpr int kAccountsCreatedField = v1::ServerMessage::kAccountsCreatedFieldNumber;
constexpr int kAccountInfoField = v1::ServerMessage::kAccountInfoFieldNumber;
constexpr int kAccountChangedField = v1::ServerMessage::kAccountChangedFieldNumber;
constexpr int kAccountTransactionsField = v1::ServerMessage::kAccountTransactionsFieldNumber;
// ServerMessage's body fields this client knows; others are skipped (a newer server's).
constexpr uint64_t kServerBodyFields = net::EnvelopeFields(
    {kConfirmationField, kOutcomeField, kStatusField, kErrorField, kPongField,
     v1::ServerMessage::kHoldsFieldNumber, v1::ServerMessage::kHoldReleasedFieldNumber,
     kBalancesField, kWelcomeField, kAccountTransactionsField, kAccountsCreatedField,
     kAccountInfoField, kAccountChangedField});

// Answers that only blocking calls ask for, so one always has a waiter.
template <typename Reply>
constexpr bool kBlockingOnly =
    std::is_same_v<Reply, v1::Balances> || std::is_same_v<Reply, v1::AccountsCreated> ||
    std::is_same_v<Reply, v1::AccountInfo> || std::is_same_v<Reply, v1::AccountChanged> ||
    std::is_same_v<Reply, v1::AccountTransactions>;

// Where ServerErrorStatus keeps the numeric ErrorCode.
constexpr char kErrorCodePayloadUrl[] = "type.googleapis.com/vouch.v1.ErrorCode";

// The Client whose reader thread this is, so a blocking call from a handler is caught.
thread_local const Client* t_reading_client = nullptr;

absl::StatusCode StatusCodeFor(v1::ErrorCode code) {
  switch (code) {
    case v1::ERROR_CODE_NOT_AUTHENTICATED:
      return absl::StatusCode::kUnauthenticated;
    case v1::ERROR_CODE_UNKNOWN_VERIFIER:
      return absl::StatusCode::kNotFound;  // No such remote verifier: fix the name, not retry.
    case v1::ERROR_CODE_RESUME_WINDOW_EXCEEDED:
    case v1::ERROR_CODE_RESUME_AHEAD:
      return absl::StatusCode::kFailedPrecondition;  // Reconnect resuming from 0, or not at all.
    case v1::ERROR_CODE_FRAME_TOO_LARGE:
    case v1::ERROR_CODE_MALFORMED_FRAME:
    case v1::ERROR_CODE_UNKNOWN_MESSAGE:
    case v1::ERROR_CODE_HELLO_REQUIRED:
    case v1::ERROR_CODE_INVALID_MESSAGE:
      return absl::StatusCode::kInvalidArgument;  // This client sent something wrong.
    case v1::ERROR_CODE_INTERNAL:
      return absl::StatusCode::kInternal;
    default:  // Connection limit, slow consumer, timeout, shutdown, take-over, a newer code.
      return absl::StatusCode::kUnavailable;
  }
}

const char* FrameErrorName(net::FrameError error) {
  switch (error) {
    case net::FrameError::kTooLarge:
      return "frame longer than frame_bytes_max";
    case net::FrameError::kMalformedVarint:
      return "malformed length prefix";
    case net::FrameError::kUnparsable:
      return "unparsable frame";
    case net::FrameError::kNone:
      break;
  }
  return "no error";
}

template <typename Reply>
void FailAll(const std::vector<std::shared_ptr<internal::Waiter<Reply>>>& waiters,
             const absl::Status& status) {
  for (const auto& waiter : waiters) waiter->Resolve(status);
}

}  // namespace

absl::Status ClientOptions::Validate() const {
  const auto bad = [](absl::string_view field, absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("client option ", field, ": ", why));
  };
  if (host.empty()) return bad("host", "must not be empty");
  if (port < 1 || port > 65535) return bad("port", "must be in 1..65535");
  if (frame_bytes_max < 64 || frame_bytes_max > (64u << 20)) {
    return bad("frame_bytes_max", "must be in 64 B..64 MiB");
  }
  if (connect_timeout <= absl::ZeroDuration()) return bad("connect_timeout", "must be positive");
  if (event_queue_capacity < 1) return bad("event_queue_capacity", "must be at least 1");
  if (!resume && (resume_from_seq != 0 || resume_epoch != 0)) {
    return bad("resume_from_seq", "needs resume");
  }
  if (resume && client_name.empty()) return bad("resume", "needs a client_name");
  return absl::OkStatus();
}

absl::Status ServerErrorStatus(const v1::Error& error) {
  const std::string& name = v1::ErrorCode_Name(error.code());
  absl::Status status(
      StatusCodeFor(error.code()),
      absl::StrCat("server error ", name.empty() ? absl::StrCat(error.code()) : name, ": ",
                   error.message()));
  status.SetPayload(kErrorCodePayloadUrl, absl::Cord(absl::StrCat(error.code())));
  return status;
}

v1::ErrorCode ServerErrorCode(const absl::Status& status) {
  const auto payload = status.GetPayload(kErrorCodePayloadUrl);  // An absl::optional<Cord>.
  int code = 0;
  if (!payload.has_value() || !absl::SimpleAtoi(std::string(*payload), &code)) {
    return v1::ERROR_CODE_UNSPECIFIED;
  }
  return static_cast<v1::ErrorCode>(code);
}

// ---------------------------------------------------------------------------------------------
// Connecting and closing.

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(const ClientOptions& options,
                                                         Handlers handlers) {
  if (absl::Status status = options.Validate(); !status.ok()) return status;
  const absl::Time deadline = absl::Now() + options.connect_timeout;
  absl::StatusOr<int> fd = internal::Dial(options.host, options.port, deadline);
  if (!fd.ok()) return fd.status();
  std::unique_ptr<Client> client(new Client(*fd, options, std::move(handlers)));
  {
    absl::MutexLock lock(&client->join_mu_);
    client->reader_ = std::thread([reader = client.get()] { reader->ReadLoop(); });
  }
  if (absl::Status status = client->SendHello(); !status.ok()) return status;
  if (options.await_hello) {
    // Hello has no reply: the Pong to a Ping behind it shows the server accepted it.
    absl::StatusOr<v1::Pong> pong = client->Ping(deadline - absl::Now());
    if (!pong.ok()) return pong.status();
  }
  return client;
}

Client::Client(int fd, const ClientOptions& options, Handlers handlers)
    : fd_(fd),
      options_(options),
      handlers_(std::move(handlers)),
      decoder_(options.frame_bytes_max) {}

Client::~Client() {
  Close();
  close(fd_);
}

void Client::Close() {
  assert(t_reading_client != this);  // A handler would be joining its own thread.
  {
    absl::MutexLock lock(&mu_);
    closing_ = true;
  }
  Break(absl::CancelledError("closed by this client"));
  absl::MutexLock lock(&join_mu_);
  if (reader_.joinable()) reader_.join();
}

void Client::Break(const absl::Status& why) {
  {
    absl::MutexLock lock(&mu_);
    if (status_.ok()) status_ = why;
  }
  // Wakes the reader's recv (which then sees the end) and tells the server at once.
  (void)shutdown(fd_, SHUT_RDWR);
}

std::optional<v1::Welcome> Client::welcome() const {
  absl::MutexLock lock(&mu_);
  return welcome_;
}

absl::Status Client::status() const {
  absl::MutexLock lock(&mu_);
  return status_;
}

uint64_t Client::transactions_unanswered() const {
  absl::MutexLock lock(&mu_);
  return unanswered_;
}

int64_t Client::NowNs() { return MonotonicClock::Default()->NowNs(); }

// ---------------------------------------------------------------------------------------------
// Requests.

absl::Status Client::SendHello() {
  v1::Hello hello;
  hello.set_client_name(options_.client_name);
  hello.set_auth_token(options_.auth_token);
  hello.set_resume(options_.resume);
  hello.set_resume_from_seq(options_.resume_from_seq);
  hello.set_epoch(options_.resume_epoch);
  absl::MutexLock lock(&write_mu_);
  if (absl::Status status = Frame(kHelloField, hello); !status.ok()) return status;
  return SendUnanswered();
}

absl::StatusOr<v1::Confirmation> Client::Submit(const v1::Transaction& transaction,
                                                absl::Duration timeout) {
  if (absl::Status status = CheckNotHandler(); !status.ok()) return status;
  const absl::Time deadline = absl::Now() + timeout;
  auto waiter = std::make_shared<internal::Waiter<v1::Confirmation>>();
  {
    absl::MutexLock lock(&write_mu_);
    absl::Status status = FrameSubmit(absl::MakeConstSpan(&transaction, 1));
    if (status.ok()) status = SendFrame(&confirmations_, {1, waiter}, deadline);
    if (!status.ok()) return status;
  }
  return Await(*waiter, deadline);
}

absl::StatusOr<v1::Status> Client::Query(uint64_t transaction_id, absl::Duration timeout) {
  if (absl::Status status = CheckNotHandler(); !status.ok()) return status;
  const absl::Time deadline = absl::Now() + timeout;
  auto waiter = std::make_shared<internal::Waiter<v1::Status>>();
  {
    absl::MutexLock lock(&write_mu_);
    query_.set_transaction_id(transaction_id);
    absl::Status status = Frame(kQueryField, query_);
    if (status.ok()) status = SendFrame(&statuses_, {1, waiter}, deadline);
    if (!status.ok()) return status;
  }
  return Await(*waiter, deadline);
}

absl::StatusOr<v1::Pong> Client::Ping(absl::Duration timeout) {
  if (absl::Status status = CheckNotHandler(); !status.ok()) return status;
  const absl::Time deadline = absl::Now() + timeout;
  auto waiter = std::make_shared<internal::Waiter<v1::Pong>>();
  {
    absl::MutexLock lock(&write_mu_);
    ping_.set_nonce(++ping_nonce_);
    ping_.set_client_time_ns(NowNs());
    absl::Status status = Frame(kPingField, ping_);
    if (status.ok()) status = SendFrame(&pongs_, {1, waiter}, deadline);
    if (!status.ok()) return status;
  }
  return Await(*waiter, deadline);
}

absl::StatusOr<v1::Balances> Client::ReadBalances(absl::Span<const uint64_t> accounts,
                                                   absl::Duration timeout) {
  if (absl::Status status = CheckNotHandler(); !status.ok()) return status;
  const absl::Time deadline = absl::Now() + timeout;
  auto waiter = std::make_shared<internal::Waiter<v1::Balances>>();
  {
    absl::MutexLock lock(&write_mu_);
    read_balances_.mutable_accounts()->Assign(accounts.begin(), accounts.end());
    absl::Status status = Frame(kReadBalancesField, read_balances_);
    if (status.ok()) status = SendFrame(&balances_, {1, waiter}, deadline);
    if (!status.ok()) return status;
  }
  absl::StatusOr<v1::Balances> balances = Await(*waiter, deadline);
  if (!balances.ok() || balances->result() == v1::BALANCES_RESULT_OK) return balances;
  return absl::UnavailableError(absl::StrCat("balance read not served: ",
                                             v1::BalancesResult_Name(balances->result()),
                                             "; retry"));
}

template <typename Reply>
absl::Status Client::SendRequest(int field, const google::protobuf::MessageLite& request,
                                 internal::PendingFifo<Reply>* fifo,
                                 std::shared_ptr<internal::Waiter<Reply>> waiter,
                                 absl::Time deadline) {
  absl::Status status = Frame(field, request);
  if (status.ok()) status = SendFrame(fifo, {1, std::move(waiter)}, deadline);
  return status;
}

absl::StatusOr<v1::AccountsCreated> Client::CreateAccounts(absl::Span<const v1::Account> accounts,
                                                           absl::Duration timeout) {
  if (absl::Status status = CheckNotHandler(); !status.ok()) return status;
  if (accounts.empty() || accounts.size() > kCreateAccountsMax) {
    return absl::InvalidArgumentError(absl::StrCat("CreateAccounts: 1..", kCreateAccountsMax,
                                                   " accounts, not ", accounts.size()));
  }
  const absl::Time deadline = absl::Now() + timeout;
  auto waiter = std::make_shared<internal::Waiter<v1::AccountsCreated>>();
  {
    absl::MutexLock lock(&write_mu_);
    create_accounts_.mutable_accounts()->Clear();
    for (const v1::Account& account : accounts) *create_accounts_.add_accounts() = account;
    absl::Status status = SendRequest(kCreateAccountsField, create_accounts_,
                                      &accounts_created_, waiter, deadline);
    if (!status.ok()) return status;
  }
  return Await(*waiter, deadline);
}

absl::StatusOr<v1::AccountInfo> Client::LookupAccount(uint64_t account, absl::Duration timeout) {
  if (absl::Status status = CheckNotHandler(); !status.ok()) return status;
  const absl::Time deadline = absl::Now() + timeout;
  auto waiter = std::make_shared<internal::Waiter<v1::AccountInfo>>();
  {
    absl::MutexLock lock(&write_mu_);
    lookup_account_.set_account(account);
    absl::Status status =
        SendRequest(kLookupAccountField, lookup_account_, &account_infos_, waiter, deadline);
    if (!status.ok()) return status;
  }
  return Await(*waiter, deadline);
}

absl::StatusOr<v1::AccountChanged> Client::ChangeAccount(uint64_t account,
                                                         v1::AccountAction action,
                                                         const v1::AccountLimits& limits,
                                                         absl::Duration timeout) {
  if (absl::Status status = CheckNotHandler(); !status.ok()) return status;
  const absl::Time deadline = absl::Now() + timeout;
  auto waiter = std::make_shared<internal::Waiter<v1::AccountChanged>>();
  {
    absl::MutexLock lock(&write_mu_);
    change_account_.set_account(account);
    change_account_.set_action(action);
    if (action == v1::ACCOUNT_ACTION_SET_LIMITS) {
      *change_account_.mutable_limits() = limits;
    } else {
      change_account_.clear_limits();
    }
    absl::Status status =
        SendRequest(kChangeAccountField, change_account_, &account_changes_, waiter, deadline);
    if (!status.ok()) return status;
  }
  return Await(*waiter, deadline);
}

absl::StatusOr<v1::AccountTransactions> Client::AccountTransactions(
    const v1::QueryAccount& query, absl::Duration timeout) {
  if (absl::Status status = CheckNotHandler(); !status.ok()) return status;
  const absl::Time deadline = absl::Now() + timeout;
  auto waiter = std::make_shared<internal::Waiter<v1::AccountTransactions>>();
  {
    absl::MutexLock lock(&write_mu_);
    absl::Status status = Frame(kQueryAccountField, query);
    if (status.ok()) status = SendFrame(&account_pages_, {1, waiter}, deadline);
    if (!status.ok()) return status;
  }
  return Await(*waiter, deadline);
}

absl::Status Client::SubmitAsync(absl::Span<const v1::Transaction> transactions) {
  if (transactions.empty()) return absl::InvalidArgumentError("SubmitAsync: empty batch");
  {
    absl::MutexLock lock(&mu_);
    // The server would refuse it with ERROR_CODE_INVALID_MESSAGE and close the connection.
    if (welcome_.has_value() && transactions.size() > welcome_->submit_batch_max()) {
      return absl::InvalidArgumentError(
          absl::StrCat("SubmitAsync: ", transactions.size(),
                       " transactions, above the server's batch maximum of ",
                       welcome_->submit_batch_max()));
    }
  }
  absl::MutexLock lock(&write_mu_);
  if (absl::Status status = FrameSubmit(transactions); !status.ok()) return status;
  return SendFrame(&confirmations_, {static_cast<uint32_t>(transactions.size()), nullptr},
                   absl::InfiniteFuture());
}

absl::Status Client::QueryAsync(uint64_t transaction_id) {
  absl::MutexLock lock(&write_mu_);
  query_.set_transaction_id(transaction_id);
  if (absl::Status status = Frame(kQueryField, query_); !status.ok()) return status;
  return SendFrame(&statuses_, {1, nullptr}, absl::InfiniteFuture());
}

absl::Status Client::PingAsync(uint64_t nonce) {
  absl::MutexLock lock(&write_mu_);
  ping_.set_nonce(nonce);
  ping_.set_client_time_ns(NowNs());
  if (absl::Status status = Frame(kPingField, ping_); !status.ok()) return status;
  return SendFrame(&pongs_, {1, nullptr}, absl::InfiniteFuture());
}

absl::Status Client::Subscribe(bool include_verified) {
  absl::MutexLock lock(&write_mu_);
  subscribe_.set_include_verified(include_verified);
  if (absl::Status status = Frame(kSubscribeField, subscribe_); !status.ok()) return status;
  return SendUnanswered();
}

absl::Status Client::FrameSubmit(absl::Span<const v1::Transaction> transactions) {
  // Clear() keeps the cleared elements, and Add() reuses them with their string capacity.
  submit_.mutable_transactions()->Clear();
  for (const v1::Transaction& transaction : transactions) *submit_.add_transactions() = transaction;
  return Frame(kSubmitField, submit_);
}

absl::Status Client::Frame(int field, const google::protobuf::MessageLite& body) {
  write_buffer_.clear();
  if (!net::AppendEnvelopeFrame(field, body, options_.frame_bytes_max, &write_buffer_)) {
    return absl::InvalidArgumentError(
        absl::StrCat(body.GetTypeName(), " of ", body.ByteSizeLong(),
                     " bytes does not fit in one frame (frame_bytes_max ",
                     options_.frame_bytes_max, ")"));
  }
  return absl::OkStatus();
}

absl::Status Client::SendUnanswered() {
  return SendFrame<v1::Pong>(nullptr, {}, absl::InfiniteFuture());
}

template <typename Reply>
absl::Status Client::SendFrame(internal::PendingFifo<Reply>* fifo,
                               internal::PendingRequest<Reply> request, absl::Time deadline) {
  constexpr bool kIsSubmit = std::is_same_v<Reply, v1::Confirmation>;
  const uint32_t answers = request.answers_left;
  {
    // Queued before the write, and under write_mu_, so the FIFO order is the wire order and
    // an answer never arrives before its request is queued.
    absl::MutexLock lock(&mu_);
    if (!status_.ok()) return status_;
    if (fifo != nullptr) fifo->Push(std::move(request));
    if (kIsSubmit) unanswered_ += answers;
  }
  size_t written = 0;
  const absl::Status status = WriteAll(deadline, &written);
  if (status.ok()) return status;
  if (written == 0 && absl::IsDeadlineExceeded(status)) {
    // Nothing reached the stream: the connection is intact, and the request is the newest
    // queued (write_mu_ is held), unless the reader has since emptied the FIFO for good.
    absl::MutexLock lock(&mu_);
    if (!finished_) {
      if (fifo != nullptr) fifo->PopBack();
      if (kIsSubmit) unanswered_ -= answers;
    }
    return status;
  }
  Break(status);  // A partly written frame leaves the stream unusable.
  return this->status();
}

absl::Status Client::WriteAll(absl::Time deadline, size_t* written) {
  return internal::SendAll(fd_, write_buffer_, deadline, written);
}

template <typename Reply>
absl::StatusOr<Reply> Client::Await(internal::Waiter<Reply>& waiter, absl::Time deadline) {
  if (!waiter.done.WaitForNotificationWithDeadline(deadline)) {
    return absl::DeadlineExceededError(
        absl::StrCat("no ", Reply().GetTypeName(), " before the timeout"));
  }
  return std::move(waiter.result);
}

absl::Status Client::CheckNotHandler() const {
  if (t_reading_client != this) return absl::OkStatus();
  return absl::FailedPreconditionError(
      "a blocking call from a handler would wait for its own thread");
}

// ---------------------------------------------------------------------------------------------
// Events.

absl::Status Client::NextEvent(Event* event, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(this, &Client::HasEventOrDone), timeout);
  if (!events_.empty()) {
    *event = std::move(events_.front());
    events_.pop_front();
    return absl::OkStatus();
  }
  if (reader_done_) {
    return absl::UnavailableError(absl::StrCat("the connection has ended: ", status_.ToString()));
  }
  return absl::DeadlineExceededError("no event before the timeout");
}

bool Client::HasEventOrDone() const { return !events_.empty() || reader_done_; }

bool Client::HasRoomOrClosing() const {
  return closing_ || events_.size() < options_.event_queue_capacity;
}

void Client::Enqueue(Event event) {
  absl::MutexLock lock(&mu_);
  // A full queue stops the reader here, and with it the reading of the socket: back-pressure.
  mu_.Await(absl::Condition(this, &Client::HasRoomOrClosing));
  if (closing_) return;  // Nobody will read it.
  events_.push_back(std::move(event));
}

template <typename Message>
void Client::Deliver(const Message& message, int64_t received_ns,
                     const std::function<void(const Message&, int64_t)>& handler) {
  if (handler) {
    handler(message, received_ns);
    return;
  }
  Enqueue(Event{received_ns, message});
}

// ---------------------------------------------------------------------------------------------
// The reader thread.

void Client::ReadLoop() {
  (void)pthread_setname_np(pthread_self(), "vouch-client");
  t_reading_client = this;
  int64_t ended_ns = 0;
  const absl::Status why = [&] {
    for (;;) {
      const ssize_t got = recv(fd_, decoder_.WritePointer(), decoder_.WritableBytes(), 0);
      ended_ns = NowNs();
      if (got == 0) return absl::UnavailableError("the server closed the connection");
      if (got < 0) {
        if (errno == EINTR) continue;
        return internal::ErrnoStatus("recv");
      }
      decoder_.Commit(static_cast<size_t>(got));
      if (absl::Status status = DispatchFrames(ended_ns); !status.ok()) return status;
    }
  }();
  Finish(why, ended_ns);
}

absl::Status Client::DispatchFrames(int64_t received_ns) {
  const char* data = nullptr;
  size_t size = 0;
  for (;;) {
    switch (decoder_.NextFrame(&data, &size)) {
      case net::FrameDecoder::Result::kNeedMore:
        return absl::OkStatus();
      case net::FrameDecoder::Result::kError:
        return absl::InternalError(
            absl::StrCat("bad frame from the server: ", FrameErrorName(decoder_.error())));
      case net::FrameDecoder::Result::kFrame:
        if (absl::Status status = Dispatch(data, size, received_ns); !status.ok()) return status;
        break;
    }
  }
}

absl::Status Client::Dispatch(const char* data, size_t size, int64_t received_ns) {
  net::EnvelopeBody body;
  if (!net::ParseEnvelopeFields(data, size, kServerBodyFields, &body)) {
    return absl::InternalError("unparsable ServerMessage from the server");
  }
  const auto parse = [&](google::protobuf::MessageLite* message) {
    return message->ParseFromArray(body.data, static_cast<int>(body.size))
               ? absl::OkStatus()
               : absl::InternalError(absl::StrCat("unparsable ", message->GetTypeName(),
                                                  " from the server"));
  };
  absl::Status status;
  switch (body.field) {
    case kConfirmationField:
      status = parse(&confirmation_);
      if (!status.ok()) return status;
      return Answer(confirmations_, confirmation_, received_ns, handlers_.on_confirmation);
    case kStatusField:
      status = parse(&query_status_);
      if (!status.ok()) return status;
      return Answer(statuses_, query_status_, received_ns, handlers_.on_status);
    case kPongField:
      status = parse(&pong_);
      if (!status.ok()) return status;
      return Answer(pongs_, pong_, received_ns, handlers_.on_pong);
    case kBalancesField:
      status = parse(&balances_reply_);
      if (!status.ok()) return status;
      return Answer(balances_, balances_reply_, received_ns, {});
    case kAccountsCreatedField:
      status = parse(&accounts_created_reply_);
      if (!status.ok()) return status;
      return Answer(accounts_created_, accounts_created_reply_, received_ns, {});
    case kAccountInfoField:
      status = parse(&account_info_reply_);
      if (!status.ok()) return status;
      return Answer(account_infos_, account_info_reply_, received_ns, {});
    case kAccountChangedField:
      status = parse(&account_changed_reply_);
      if (!status.ok()) return status;
      return Answer(account_changes_, account_changed_reply_, received_ns, {});
    case kAccountTransactionsField:
      status = parse(&account_page_reply_);
      if (!status.ok()) return status;
      return Answer(account_pages_, account_page_reply_, received_ns, {});
    case kOutcomeField:
      status = parse(&outcome_);
      if (status.ok()) Deliver(outcome_, received_ns, handlers_.on_outcome);
      return status;
    case kWelcomeField: {
      status = parse(&welcome_reply_);
      if (!status.ok()) return status;
      absl::MutexLock lock(&mu_);
      welcome_ = welcome_reply_;
      return absl::OkStatus();
    }
    case kErrorField:
      status = parse(&error_);
      if (!status.ok()) return status;
      status = ServerErrorStatus(error_);
      Break(status);  // Calls fail with the server's reason from now on.
      Deliver(error_, received_ns, handlers_.on_error);
      return status;  // The server closes after an Error; nothing follows it.
    default:
      return absl::OkStatus();  // A body this build does not know: skipped, as protobuf does.
  }
}

template <typename Reply>
absl::Status Client::Answer(internal::PendingFifo<Reply>& fifo, const Reply& reply,
                            int64_t received_ns,
                            const std::function<void(const Reply&, int64_t)>& handler) {
  std::shared_ptr<internal::Waiter<Reply>> waiter;
  {
    absl::MutexLock lock(&mu_);
    if (fifo.empty()) {
      return absl::InternalError(
          absl::StrCat("protocol: a ", reply.GetTypeName(), " that no request was waiting for"));
    }
    waiter = fifo.Answer();
    if constexpr (std::is_same_v<Reply, v1::Confirmation>) --unanswered_;
  }
  if (waiter != nullptr) {
    waiter->Resolve(reply);
  } else if constexpr (!kBlockingOnly<Reply>) {
    Deliver(reply, received_ns, handler);
  } else {
    assert(false && "asked for by blocking calls only, which always wait");
  }
  return absl::OkStatus();
}

void Client::Finish(const absl::Status& why, int64_t received_ns) {
  std::vector<std::shared_ptr<internal::Waiter<v1::Confirmation>>> confirmation_waiters;
  std::vector<std::shared_ptr<internal::Waiter<v1::Status>>> status_waiters;
  std::vector<std::shared_ptr<internal::Waiter<v1::Pong>>> pong_waiters;
  std::vector<std::shared_ptr<internal::Waiter<v1::Balances>>> balances_waiters;
  std::vector<std::shared_ptr<internal::Waiter<v1::AccountsCreated>>> created_waiters;
  std::vector<std::shared_ptr<internal::Waiter<v1::AccountInfo>>> info_waiters;
  std::vector<std::shared_ptr<internal::Waiter<v1::AccountChanged>>> changed_waiters;
  std::vector<std::shared_ptr<internal::Waiter<v1::AccountTransactions>>> page_waiters;
  absl::Status status;
  {
    absl::MutexLock lock(&mu_);
    if (status_.ok()) status_ = why;
    status = status_;
    finished_ = true;
    unanswered_ = 0;
    confirmation_waiters = confirmations_.TakeWaiters();
    status_waiters = statuses_.TakeWaiters();
    pong_waiters = pongs_.TakeWaiters();
    balances_waiters = balances_.TakeWaiters();
    created_waiters = accounts_created_.TakeWaiters();
    info_waiters = account_infos_.TakeWaiters();
    changed_waiters = account_changes_.TakeWaiters();
    page_waiters = account_pages_.TakeWaiters();
  }
  (void)shutdown(fd_, SHUT_RDWR);  // After a protocol error, so that the server sees it now.
  FailAll(confirmation_waiters, status);
  FailAll(status_waiters, status);
  FailAll(pong_waiters, status);
  FailAll(balances_waiters, status);
  FailAll(created_waiters, status);
  FailAll(info_waiters, status);
  FailAll(changed_waiters, status);
  FailAll(page_waiters, status);
  if (handlers_.on_disconnect) {
    handlers_.on_disconnect(status, received_ns);
  } else {
    Enqueue(Event{received_ns, Disconnect{status}});
  }
  absl::MutexLock lock(&mu_);
  reader_done_ = true;
}

}  // namespace vouch::client

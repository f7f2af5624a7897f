// kafka-consumer-groups.sh's rules, tables and round trips.
#include "client/groups_admin.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <set>

#include "base/bytes.h"
#include "client/console.h"  // decode_assignment: the consumer protocol
#include "wire/generated/delete_groups.h"
#include "wire/generated/describe_groups.h"
#include "wire/generated/list_groups.h"
#include "wire/generated/list_offsets.h"
#include "wire/generated/offset_commit.h"
#include "wire/generated/offset_delete.h"
#include "wire/generated/offset_fetch.h"

namespace bulwark::client {
namespace {

constexpr const char* kMissing = "-";  // Kafka's MISSING_COLUMN_VALUE

Error usage(std::string message) { return make_error(ErrorKind::invalid_argument, std::move(message)); }

template <class Int>
std::optional<Int> parse_int(std::string_view text) {
  Int value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

// Fixed-width digits at `at` (the datetime fields), or nullopt.
std::optional<int> digits(std::string_view text, std::size_t at, std::size_t width) {
  if (at + width > text.size()) return std::nullopt;
  auto part = text.substr(at, width);
  if (!std::all_of(part.begin(), part.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
    return std::nullopt;
  return parse_int<int>(part);
}

// "Z", "+hh:mm", "+hhmm", "+hh" (or with '-') in minutes east of UTC.
std::optional<int> zone_offset_minutes(std::string_view zone) {
  if (zone.empty() || zone == "Z" || zone == "z") return 0;
  if (zone[0] != '+' && zone[0] != '-') return std::nullopt;
  const int sign = zone[0] == '-' ? -1 : 1;
  std::string rest(zone.substr(1));
  std::erase(rest, ':');
  if (rest.size() != 2 && rest.size() != 4) return std::nullopt;
  auto hours = digits(rest, 0, 2);
  auto minutes = rest.size() == 4 ? digits(rest, 2, 2) : std::optional<int>(0);
  if (!hours || !minutes || *hours > 18 || *minutes > 59) return std::nullopt;
  return sign * (*hours * 60 + *minutes);
}

std::string column(std::string_view value, std::size_t width) {
  return fmt::format("{:<{}}", value, width);
}

template <class T>
std::string or_missing(const std::optional<T>& value) {
  if (!value) return kMissing;
  return fmt::format("{}", *value);
}

// "orders(0,1), payments(3)": a member's partitions as Kafka's --members --verbose prints them.
std::string assignment_text(const std::vector<TopicPartition>& assignment) {
  if (assignment.empty()) return kMissing;
  std::map<std::string, std::vector<std::int32_t>> by_topic;
  for (const auto& tp : assignment) by_topic[tp.topic].push_back(tp.partition);
  std::string out;
  for (auto& entry : by_topic) {
    std::sort(entry.second.begin(), entry.second.end());
    out += fmt::format("{}{}({})", out.empty() ? "" : ", ", entry.first, fmt::join(entry.second, ","));
  }
  return out;
}

std::int64_t clamp_to_log(std::int64_t offset, const PartitionOffsets& o) {
  if (o.log_end && offset > *o.log_end) return *o.log_end;
  if (o.log_start && offset < *o.log_start) return *o.log_start;
  return offset;
}

// A member's ConsumerProtocolAssignment as a flat list; bytes that are not one show as no partitions.
std::vector<TopicPartition> assigned_partitions(ByteView bytes) {
  std::vector<TopicPartition> out;
  auto decoded = decode_assignment(bytes);
  if (!decoded) return out;
  for (const auto& t : *decoded)
    for (auto p : t.partitions) out.push_back({t.topic, p});
  return out;
}

Error broker_error(std::int16_t code, std::string_view group, std::string_view action, const AdminConnection& via) {
  return make_error(group_error_kind(code), explain_group_error(code, group, action, via.identity()));
}

}  // namespace

std::string to_string(const TopicPartition& tp) { return fmt::format("{}-{}", tp.topic, tp.partition); }

// ---- Parsing -------------------------------------------------------------------------------------

Result<TopicSelection> parse_topic_arg(std::string_view arg) {
  const auto colon = arg.find(':');
  if (colon == std::string_view::npos) {
    if (arg.empty()) return usage("--topic needs a topic name");
    return TopicSelection{std::string(arg), {}};
  }
  TopicSelection s{std::string(arg.substr(0, colon)), {}};
  std::string_view list = arg.substr(colon + 1);
  if (s.topic.empty() || list.empty() || list.find(':') != std::string_view::npos)
    return usage(fmt::format("invalid --topic '{}': expected a topic name and partitions, as topic:0,1,2", arg));
  for (;;) {
    const auto comma = list.find(',');
    auto item = list.substr(0, comma);
    auto partition = parse_int<std::int32_t>(item);
    if (!partition || *partition < 0)
      return usage(fmt::format("invalid partition '{}' in --topic '{}'", item, arg));
    s.partitions.push_back(*partition);
    if (comma == std::string_view::npos) return s;
    list = list.substr(comma + 1);
  }
}

Result<std::int64_t> parse_datetime(std::string_view text) {
  auto bad = [&] {
    return usage(fmt::format("--to-datetime '{}' is not a date and time as YYYY-MM-DDTHH:mm:SS.sss (optionally "
                             "followed by Z or a zone offset such as +02:00)",
                             text));
  };
  // YYYY-MM-DDTHH:mm:SS is 19 characters with its separators at fixed places.
  if (text.size() < 19 || text[4] != '-' || text[7] != '-' || (text[10] != 'T' && text[10] != 't') ||
      text[13] != ':' || text[16] != ':')
    return bad();
  auto year = digits(text, 0, 4), month = digits(text, 5, 2), day = digits(text, 8, 2);
  auto hour = digits(text, 11, 2), minute = digits(text, 14, 2), second = digits(text, 17, 2);
  if (!year || !month || !day || !hour || !minute || !second || *month < 1 || *month > 12 || *day < 1 ||
      *day > 31 || *hour > 23 || *minute > 59 || *second > 59)
    return bad();
  std::size_t at = 19;
  std::int64_t millis = 0;
  if (at < text.size() && text[at] == '.') {
    std::size_t end = at + 1;
    while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) ++end;
    if (end == at + 1) return bad();
    // Milliseconds from the first three fraction digits; finer ones do not matter to ListOffsets.
    std::string fraction(text.substr(at + 1, std::min<std::size_t>(3, end - at - 1)));
    fraction.resize(3, '0');
    millis = *parse_int<std::int64_t>(fraction);
    at = end;
  }
  auto zone = zone_offset_minutes(text.substr(at));
  if (!zone) return bad();
  const std::int64_t days = days_from_civil(*year, static_cast<unsigned>(*month), static_cast<unsigned>(*day));
  const std::int64_t seconds = days * 86400 + *hour * 3600 + *minute * 60 + *second - std::int64_t{*zone} * 60;
  return seconds * 1000 + millis;
}

Result<std::int64_t> parse_duration(std::string_view text) {
  auto bad = [&] {
    return usage(fmt::format("--by-duration '{}' is not an ISO-8601 duration such as PT30M, P1DT2H or PT0.5S", text));
  };
  std::string s = lower(text);
  if (s.size() < 3 || s[0] != 'p') return bad();
  std::int64_t total_ms = 0;
  bool in_time = false, any = false;
  std::size_t i = 1;
  while (i < s.size()) {
    if (s[i] == 't') {
      if (in_time) return bad();
      in_time = true;
      ++i;
      continue;
    }
    std::size_t end = i;
    while (end < s.size() && (std::isdigit(static_cast<unsigned char>(s[end])) || s[end] == '.')) ++end;
    if (end == i || end == s.size()) return bad();
    const std::string number = s.substr(i, end - i);
    const char unit = s[end];
    const auto dot = number.find('.');
    if (dot != std::string::npos && unit != 's') return bad();  // only seconds take a fraction
    auto whole = parse_int<std::int64_t>(number.substr(0, dot));
    if (!whole || *whole > 10'000'000'000LL) return bad();
    std::int64_t unit_ms = 0;
    if (unit == 'd' && !in_time) unit_ms = 86'400'000;
    else if (unit == 'h' && in_time) unit_ms = 3'600'000;
    else if (unit == 'm' && in_time) unit_ms = 60'000;
    else if (unit == 's' && in_time) unit_ms = 1000;
    else return bad();
    total_ms += *whole * unit_ms;
    if (dot != std::string::npos) {
      std::string fraction = number.substr(dot + 1, 3);
      if (fraction.empty() && number.size() == dot + 1) return bad();
      fraction.resize(3, '0');
      auto ms = parse_int<std::int64_t>(fraction);
      if (!ms) return bad();
      total_ms += *ms;
    }
    any = true;
    i = end + 1;
  }
  if (!any || s.back() == 't') return bad();
  return total_ms;
}

Result<std::vector<std::string>> parse_group_states(std::string_view text) {
  static constexpr const char* kStates[] = {"PreparingRebalance", "CompletingRebalance", "Stable", "Dead", "Empty"};
  std::vector<std::string> out;
  std::string_view rest = text;
  while (true) {
    const auto comma = rest.find(',');
    std::string word = lower(rest.substr(0, comma));
    std::erase_if(word, [](char c) { return std::isspace(static_cast<unsigned char>(c)); });
    const auto* known = std::find_if(std::begin(kStates), std::end(kStates),
                                     [&](const char* s) { return lower(s) == word; });
    if (known == std::end(kStates))
      return usage(fmt::format("invalid state list '{}'; valid states are: {}", text, fmt::join(kStates, ", ")));
    if (std::find(out.begin(), out.end(), *known) == out.end()) out.emplace_back(*known);
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return out;
}

// ---- Reset offsets -------------------------------------------------------------------------------

std::optional<std::int64_t> reset_timestamp(const ResetSpec& spec) {
  using K = ResetSpec::Kind;
  if (spec.kind == K::to_datetime || spec.kind == K::by_duration) return spec.value;
  return std::nullopt;
}

Result<std::int64_t> new_offset(const ResetSpec& spec, const TopicPartition& tp, const PartitionOffsets& o) {
  using K = ResetSpec::Kind;
  auto unknown = [&](const char* what) {
    return make_error(ErrorKind::unavailable, fmt::format("could not get the {} offset of {}", what, to_string(tp)));
  };
  switch (spec.kind) {
    case K::earliest:
      if (!o.log_start) return unknown("earliest");
      return *o.log_start;
    case K::latest:
      if (!o.log_end) return unknown("latest");
      return *o.log_end;
    case K::current:
      if (o.committed) return *o.committed;
      if (!o.log_end) return unknown("latest");
      return *o.log_end;
    case K::to_offset:
      return clamp_to_log(spec.value, o);
    case K::shift_by:
      if (!o.committed) {
        return make_error(ErrorKind::not_found,
                          fmt::format("cannot shift the offset of {}: the group has no committed offset there",
                                      to_string(tp)));
      }
      return clamp_to_log(*o.committed + spec.value, o);
    case K::to_datetime:
    case K::by_duration:
      if (!o.by_time) return unknown("timestamp's");
      if (*o.by_time >= 0) return *o.by_time;
      // No record that late: Kafka falls back to the log end.
      if (!o.log_end) return unknown("latest");
      return *o.log_end;
  }
  return unknown("new");
}

// ---- Groups and what to print ---------------------------------------------------------------------

std::vector<OffsetRow> offset_rows(const GroupDescription& group, const std::map<TopicPartition, std::int64_t>& committed,
                                   const std::map<TopicPartition, std::int64_t>& log_end) {
  auto row = [&](const TopicPartition& tp, const std::optional<std::string>& member, const std::optional<std::string>& host,
                 const std::optional<std::string>& client) {
    OffsetRow r{group.group_id, tp.topic, tp.partition, std::nullopt, std::nullopt, std::nullopt, member, host, client};
    if (auto it = committed.find(tp); it != committed.end() && it->second >= 0) r.current_offset = it->second;
    if (auto it = log_end.find(tp); it != log_end.end()) r.log_end_offset = it->second;
    if (r.current_offset && r.log_end_offset) r.lag = *r.log_end_offset - *r.current_offset;
    return r;
  };
  std::vector<const GroupMember*> members;
  for (const auto& m : group.members)
    if (!m.assignment.empty()) members.push_back(&m);
  std::stable_sort(members.begin(), members.end(),
                   [](const GroupMember* a, const GroupMember* b) { return a->assignment.size() > b->assignment.size(); });
  std::vector<OffsetRow> rows;
  std::set<TopicPartition> assigned;
  for (const auto* m : members) {
    std::vector<TopicPartition> partitions = m->assignment;
    std::sort(partitions.begin(), partitions.end());
    for (const auto& tp : partitions) {
      assigned.insert(tp);
      rows.push_back(row(tp, m->member_id, m->host, m->client_id));
    }
  }
  const std::optional<std::string> missing = std::string(kMissing);
  for (const auto& entry : committed)
    if (!assigned.contains(entry.first)) rows.push_back(row(entry.first, missing, missing, missing));
  return rows;
}

std::string render_group_list(const std::vector<GroupListing>& groups, bool with_state) {
  std::string out;
  if (!with_state) {
    for (const auto& g : groups) out += g.group_id + "\n";
    return out;
  }
  std::size_t width = 15;
  for (const auto& g : groups) width = std::max(width, g.group_id.size());
  out += column("GROUP", width) + " STATE\n";
  for (const auto& g : groups) out += column(g.group_id, width) + " " + (g.state.empty() ? kMissing : g.state) + "\n";
  return out;
}

std::string render_offsets(const std::vector<OffsetRow>& rows) {
  if (rows.empty()) return "";
  std::size_t group_w = 15, topic_w = 15, member_w = 15, host_w = 15;
  for (const auto& r : rows) {
    group_w = std::max(group_w, r.group.size());
    topic_w = std::max(topic_w, r.topic.value_or(kMissing).size());
    member_w = std::max(member_w, r.consumer_id.value_or(kMissing).size());
    host_w = std::max(host_w, r.host.value_or(kMissing).size());
  }
  auto line = [&](std::string_view group, std::string_view topic, std::string_view partition, std::string_view current,
                  std::string_view end, std::string_view lag, std::string_view member, std::string_view host,
                  std::string_view client) {
    return fmt::format("\n{} {} {} {} {} {} {} {} {}", column(group, group_w), column(topic, topic_w), column(partition, 10),
                       column(current, 15), column(end, 15), column(lag, 15), column(member, member_w),
                       column(host, host_w), client);
  };
  std::string out = line("GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST",
                         "CLIENT-ID");
  for (const auto& r : rows) {
    out += line(r.group, r.topic.value_or(kMissing), or_missing(r.partition), or_missing(r.current_offset),
                or_missing(r.log_end_offset), or_missing(r.lag), r.consumer_id.value_or(kMissing),
                r.host.value_or(kMissing), r.client_id.value_or(kMissing));
  }
  return out + "\n";
}

std::string render_members(const GroupDescription& group, bool verbose) {
  if (group.members.empty()) return "";
  std::size_t group_w = std::max<std::size_t>(15, group.group_id.size()), member_w = 15, instance_w = 17, host_w = 15,
              client_w = 15;
  bool with_instance = false;
  for (const auto& m : group.members) {
    member_w = std::max(member_w, m.member_id.size());
    instance_w = std::max(instance_w, m.group_instance_id.value_or("").size());
    host_w = std::max(host_w, m.host.size());
    client_w = std::max(client_w, m.client_id.size());
    with_instance = with_instance || !m.group_instance_id.value_or("").empty();
  }
  auto line = [&](std::string_view member, std::string_view instance, std::string_view host, std::string_view client,
                  std::string_view partitions, std::string_view group_id) {
    std::string out = column(group_id, group_w) + " " + column(member, member_w) + " ";
    if (with_instance) out += column(instance, instance_w) + " ";
    return out + column(host, host_w) + " " + column(client, client_w) + " " + column(partitions, 15) + " ";
  };
  std::string out = "\n" + line("CONSUMER-ID", "GROUP-INSTANCE-ID", "HOST", "CLIENT-ID", "#PARTITIONS", "GROUP");
  out += verbose ? "ASSIGNMENT\n" : "\n";
  for (const auto& m : group.members) {
    out += line(m.member_id, m.group_instance_id.value_or(""), m.host, m.client_id,
                std::to_string(m.assignment.size()), group.group_id);
    out += (verbose ? assignment_text(m.assignment) : "") + "\n";
  }
  return out;
}

std::string render_state(const GroupDescription& group) {
  const std::string coordinator = fmt::format("{}  ({})", group.coordinator, group.coordinator_id);
  const std::size_t group_w = std::max<std::size_t>(15, group.group_id.size());
  const std::size_t coordinator_w = std::max<std::size_t>(25, coordinator.size());
  auto line = [&](std::string_view id, std::string_view coord, std::string_view strategy, std::string_view state,
                  std::string_view members) {
    return fmt::format("\n{} {} {} {} {}", column(id, group_w), column(coord, coordinator_w), column(strategy, 20),
                       column(state, 20), members);
  };
  return line("GROUP", "COORDINATOR (ID)", "ASSIGNMENT-STRATEGY", "STATE", "#MEMBERS") +
         line(group.group_id, coordinator, group.protocol.empty() ? kMissing : group.protocol, group.state,
              std::to_string(group.members.size())) +
         "\n";
}

std::string render_reset(const std::map<std::string, std::map<TopicPartition, std::int64_t>>& plan) {
  std::size_t group_w = 15, topic_w = 15;
  bool any = false;
  for (const auto& group : plan) {
    group_w = std::max(group_w, group.first.size());
    for (const auto& p : group.second) topic_w = std::max(topic_w, p.first.topic.size());
    any = any || !group.second.empty();
  }
  if (!any) return "";
  auto line = [&](std::string_view g, std::string_view t, std::string_view p, std::string_view offset) {
    return fmt::format("\n{} {} {} {}", column(g, group_w), column(t, topic_w), column(p, 10), offset);
  };
  std::string out = line("GROUP", "TOPIC", "PARTITION", "NEW-OFFSET");
  for (const auto& group : plan)
    for (const auto& p : group.second)
      out += line(group.first, p.first.topic, std::to_string(p.first.partition), std::to_string(p.second));
  return out + "\n";
}

std::string render_offset_deletion(const std::map<TopicPartition, std::int16_t>& results) {
  std::size_t topic_w = 15;
  for (const auto& r : results) topic_w = std::max(topic_w, r.first.topic.size());
  auto line = [&](std::string_view t, std::string_view p, std::string_view status) {
    return fmt::format("\n{} {} {}", column(t, topic_w), column(p, 10), status);
  };
  std::string out = line("TOPIC", "PARTITION", "STATUS");
  for (const auto& r : results) {
    out += line(r.first.topic, std::to_string(r.first.partition),
                r.second == 0 ? std::string("Successful") : "Error: " + error_name(r.second));
  }
  return out + "\n";
}

bool group_exists(const GroupDescription& group) { return group.state != "Dead"; }

bool group_inactive(const GroupDescription& group) { return group.state == "Empty" || group.state == "Dead"; }

std::optional<std::string> group_state_note(const GroupDescription& group) {
  const std::string& s = group.state;
  if (s == "Dead") return fmt::format("Error: Consumer group '{}' does not exist.", group.group_id);
  if (s == "Empty") return fmt::format("Consumer group '{}' has no active members.", group.group_id);
  if (s == "PreparingRebalance" || s == "CompletingRebalance" || s == "Assigning" || s == "Reconciling")
    return fmt::format("Warning: Consumer group '{}' is rebalancing.", group.group_id);
  return std::nullopt;
}

std::string explain_group_error(std::int16_t code, std::string_view group, std::string_view action,
                                std::string_view identity) {
  const std::string name = error_name(code);
  switch (code) {
    case 30:
      return fmt::format("the broker says {} may not {} group '{}' ({})", identity, action, group, name);
    case 29:
      return fmt::format("the broker says {} may not use a topic of group '{}' ({})", identity, group, name);
    case 31:
      return fmt::format("the broker says {} may not {} group '{}': that needs a permission on the cluster ({})",
                         identity, action, group, name);
    case 68:
      return fmt::format("group '{}' still has active members; stop its consumers first ({})", group, name);
    case 69:
      return fmt::format("group '{}' does not exist ({})", group, name);
    case 24:
      return fmt::format("'{}' is not a valid group id ({})", group, name);
    case 86:
      return fmt::format("the consumers of group '{}' are still subscribed to the topic; stop them first ({})", group,
                         name);
    case 3:
      return fmt::format("the topic or partition does not exist ({})", name);
    case 14:
    case 15:
    case 16:
      return fmt::format("the coordinator of group '{}' is not available now; try again ({})", group, name);
    case 22:
    case 25:
    case 27:
      return fmt::format("group '{}' has active members, so its offsets cannot be set from outside ({})", group, name);
    default:
      return fmt::format("the broker could not {} group '{}' ({})", action, group, name);
  }
}

ErrorKind group_error_kind(std::int16_t code) {
  switch (code) {
    case 29:
    case 30:
    case 31:
      return ErrorKind::unauthenticated;
    case 3:
    case 69:
      return ErrorKind::not_found;
    case 14:
    case 15:
    case 16:
      return ErrorKind::unavailable;
    default:
      return ErrorKind::internal;
  }
}

// ---- Round trips ---------------------------------------------------------------------------------

Result<std::vector<GroupListing>> list_groups(ClusterClient& cluster, const std::vector<std::string>& states) {
  std::map<std::string, GroupListing> found;
  for (auto id : cluster.broker_ids()) {
    auto broker = cluster.broker(id);
    if (!broker) return broker.error();
    wire::msg::ListGroupsRequest request;
    request.states_filter = states;
    auto response = (*broker)->call<wire::msg::ListGroupsRequest, wire::msg::ListGroupsResponse>(request);
    if (!response) return response.error();
    if (response->error_code != 0) {
      return make_error(group_error_kind(response->error_code),
                        fmt::format("broker {} could not list its groups ({})", id, error_name(response->error_code)));
    }
    for (auto& g : response->groups) {
      if (g.protocol_type != "consumer" && !g.protocol_type.empty()) continue;
      // A broker older than ListGroups v4 sends no states: it cannot filter, and neither can we.
      if (!states.empty() && !g.group_state.empty() &&
          std::find(states.begin(), states.end(), g.group_state) == states.end())
        continue;
      found[g.group_id] = GroupListing{g.group_id, g.protocol_type, g.group_state};
    }
  }
  std::vector<GroupListing> out;
  for (auto& entry : found) out.push_back(std::move(entry.second));
  return out;
}

Result<GroupDescription> describe_group(ClusterClient& cluster, const std::string& group) {
  auto coordinator = cluster.group_coordinator(group);
  if (!coordinator) return coordinator.error();
  AdminConnection& conn = **coordinator;
  wire::msg::DescribeGroupsRequest request;
  request.groups = {group};
  auto response = conn.call<wire::msg::DescribeGroupsRequest, wire::msg::DescribeGroupsResponse>(request);
  if (!response) return response.error();
  if (response->groups.size() != 1)
    return make_error(ErrorKind::corrupt, fmt::format("the broker described {} groups for one", response->groups.size()));
  auto& g = response->groups.front();
  if (g.error_code != 0) return broker_error(g.error_code, group, "describe", conn);
  GroupDescription d{group, g.group_state, g.protocol_type, g.protocol_data, {}, -1, conn.broker().to_string()};
  d.coordinator_id = cluster.node_of(&conn).value_or(-1);
  for (auto& m : g.members) {
    GroupMember member{m.member_id, m.group_instance_id, m.client_id, m.client_host, {}};
    // Other protocols (Connect, Streams' own) carry assignments the consumer decoder cannot read.
    if (d.protocol_type == "consumer") member.assignment = assigned_partitions(m.member_assignment);
    d.members.push_back(std::move(member));
  }
  return d;
}

Result<std::map<TopicPartition, std::int64_t>> committed_offsets(ClusterClient& cluster, const std::string& group) {
  auto coordinator = cluster.group_coordinator(group);
  if (!coordinator) return coordinator.error();
  AdminConnection& conn = **coordinator;
  // v2 is the first that takes "all topics" (null).
  using Request = wire::msg::OffsetFetchRequest;
  auto version = conn.negotiate(Request::api_key, 2, Request::highest_supported_version);
  if (!version) return version.error();
  Request request;
  request.group_id = group;
  request.topics = std::nullopt;
  request.groups.push_back({});
  request.groups.back().group_id = group;
  request.groups.back().topics = std::nullopt;
  auto response = conn.call<Request, wire::msg::OffsetFetchResponse>(request);
  if (!response) return response.error();
  std::map<TopicPartition, std::int64_t> out;
  auto take = [&out](const std::string& topic, std::int32_t partition, std::int64_t offset, std::int16_t error) {
    if (error == 0 && offset >= 0) out[{topic, partition}] = offset;
  };
  if (*version < 8) {
    if (response->error_code != 0) return broker_error(response->error_code, group, "fetch the offsets of", conn);
    for (const auto& t : response->topics)
      for (const auto& p : t.partitions) take(t.name, p.partition_index, p.committed_offset, p.error_code);
    return out;
  }
  if (response->groups.size() != 1)
    return make_error(ErrorKind::corrupt, fmt::format("the broker answered offsets of {} groups for one",
                                                      response->groups.size()));
  const auto& g = response->groups.front();
  if (g.error_code != 0) return broker_error(g.error_code, group, "fetch the offsets of", conn);
  for (const auto& t : g.topics)
    for (const auto& p : t.partitions) take(t.name, p.partition_index, p.committed_offset, p.error_code);
  return out;
}

Result<std::map<TopicPartition, std::int64_t>> list_offsets(ClusterClient& cluster,
                                                            const std::vector<TopicPartition>& partitions,
                                                            std::int64_t timestamp) {
  // One request per leader, each topic once in it.
  std::map<AdminConnection*, std::map<std::string, std::vector<std::int32_t>>> by_leader;
  for (const auto& tp : partitions) {
    auto leader = cluster.leader(tp.topic, tp.partition);
    if (leader) by_leader[*leader][tp.topic].push_back(tp.partition);
  }
  std::map<TopicPartition, std::int64_t> out;
  using Request = wire::msg::ListOffsetsRequest;
  for (auto& entry : by_leader) {
    AdminConnection& conn = *entry.first;
    // v0 answers with a list of offsets instead of one; every broker since 0.10.1 has v1.
    auto version = conn.negotiate(Request::api_key, 1, Request::highest_supported_version);
    if (!version) return version.error();
    Request request;
    request.replica_id = -1;  // a client, not a follower
    for (auto& topic : entry.second) {
      Request::ListOffsetsTopic t;
      t.name = topic.first;
      for (auto p : topic.second) t.partitions.push_back({p, -1, timestamp, 1, {}});
      request.topics.push_back(std::move(t));
    }
    auto response = conn.call<Request, wire::msg::ListOffsetsResponse>(request);
    if (!response) return response.error();
    for (const auto& t : response->topics)
      for (const auto& p : t.partitions)
        if (p.error_code == 0) out[{t.name, p.partition_index}] = p.offset;
  }
  return out;
}

Result<std::vector<TopicPartition>> resolve_partitions(ClusterClient& cluster,
                                                       const std::vector<TopicSelection>& selections) {
  std::vector<std::string> topics;
  for (const auto& s : selections)
    if (std::find(topics.begin(), topics.end(), s.topic) == topics.end()) topics.push_back(s.topic);
  if (topics.empty()) return std::vector<TopicPartition>{};
  auto metadata = cluster.refresh_metadata(topics);
  if (!metadata) return metadata.error();
  std::set<TopicPartition> out;
  for (const auto& s : selections) {
    const auto* topic = [&]() -> const wire::msg::MetadataResponse::MetadataResponseTopic* {
      for (const auto& t : metadata->topics)
        if (t.name == s.topic) return &t;
      return nullptr;
    }();
    if (!topic || topic->error_code == 3)
      return make_error(ErrorKind::not_found, fmt::format("topic '{}' does not exist", s.topic));
    if (topic->error_code == 29) {
      return make_error(ErrorKind::unauthenticated,
                        fmt::format("the broker says {} may not describe topic '{}' (TOPIC_AUTHORIZATION_FAILED)",
                                    cluster.any().identity(), s.topic));
    }
    if (topic->error_code != 0) {
      return make_error(ErrorKind::unavailable,
                        fmt::format("topic '{}': {}", s.topic, error_name(topic->error_code)));
    }
    std::set<std::int32_t> existing;
    for (const auto& p : topic->partitions) existing.insert(p.partition_index);
    if (s.partitions.empty()) {
      for (auto p : existing) out.insert({s.topic, p});
      continue;
    }
    for (auto p : s.partitions) {
      if (!existing.contains(p))
        return make_error(ErrorKind::not_found, fmt::format("the partition {}-{} does not exist", s.topic, p));
      out.insert({s.topic, p});
    }
  }
  return std::vector<TopicPartition>(out.begin(), out.end());
}

Result<std::map<TopicPartition, std::int16_t>> commit_offsets(ClusterClient& cluster, const std::string& group,
                                                              const std::map<TopicPartition, std::int64_t>& offsets) {
  auto coordinator = cluster.group_coordinator(group);
  if (!coordinator) return coordinator.error();
  using Request = wire::msg::OffsetCommitRequest;
  Request request;
  request.group_id = group;
  request.generation_id_or_member_epoch = -1;  // an admin commit: no generation, no member
  request.member_id = "";
  for (const auto& entry : offsets) {
    if (request.topics.empty() || request.topics.back().name != entry.first.topic) {
      request.topics.push_back({});
      request.topics.back().name = entry.first.topic;
    }
    Request::OffsetCommitRequestPartition p;
    p.partition_index = entry.first.partition;
    p.committed_offset = entry.second;
    request.topics.back().partitions.push_back(std::move(p));
  }
  auto response = (*coordinator)->call<Request, wire::msg::OffsetCommitResponse>(request);
  if (!response) return response.error();
  std::map<TopicPartition, std::int16_t> out;
  for (const auto& t : response->topics)
    for (const auto& p : t.partitions) out[{t.name, p.partition_index}] = p.error_code;
  return out;
}

Result<std::map<std::string, std::int16_t>> delete_groups(ClusterClient& cluster, const std::vector<std::string>& groups) {
  std::map<AdminConnection*, std::vector<std::string>> by_coordinator;
  for (const auto& g : groups) {
    auto coordinator = cluster.group_coordinator(g);
    if (!coordinator) return coordinator.error();
    by_coordinator[*coordinator].push_back(g);
  }
  std::map<std::string, std::int16_t> out;
  for (auto& entry : by_coordinator) {
    wire::msg::DeleteGroupsRequest request;
    request.groups_names = entry.second;
    auto response = entry.first->call<wire::msg::DeleteGroupsRequest, wire::msg::DeleteGroupsResponse>(request);
    if (!response) return response.error();
    for (const auto& r : response->results) out[r.group_id] = r.error_code;
  }
  return out;
}

Result<OffsetDeletion> delete_offsets(ClusterClient& cluster, const std::string& group,
                                      const std::vector<TopicPartition>& partitions) {
  auto coordinator = cluster.group_coordinator(group);
  if (!coordinator) return coordinator.error();
  using Request = wire::msg::OffsetDeleteRequest;
  Request request;
  request.group_id = group;
  for (const auto& tp : partitions) {
    if (request.topics.empty() || request.topics.back().name != tp.topic) {
      request.topics.push_back({});
      request.topics.back().name = tp.topic;
    }
    request.topics.back().partitions.push_back({tp.partition, {}});
  }
  auto response = (*coordinator)->call<Request, wire::msg::OffsetDeleteResponse>(request);
  if (!response) return response.error();
  OffsetDeletion out{response->error_code, {}};
  for (const auto& t : response->topics)
    for (const auto& p : t.partitions) out.partitions[{t.name, p.partition_index}] = p.error_code;
  return out;
}

}  // namespace bulwark::client

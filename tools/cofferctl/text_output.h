// text_output.h: --output=table and --output=text (output.h has JSON).
//
// Both read a response through one model of "cells": a field is a cell when
// it reads as one piece of text —
//   scalars              as typed; bytes in base64; enums without their
//                        prefix (ENABLED for KEY_STATE_ENABLED), empty for
//                        the *_UNSPECIFIED value
//   timestamps           RFC 3339 (2030-01-01T00:00:00Z), durations (3s)
//   repeated scalars     joined with ','
//   maps, key/value      key=value entries joined with ';'
//   pairs (tags)         (a map's message value reads as its one field)
// Any other message is a nested object.
//
// A list response is one whose first field is a repeated message
// (ListSecrets' secret_list, GetParametersByPath's parameters...); its
// elements are the rows. Any other response is one object — or, when its
// only field is a message (DescribeKey's key_metadata), that message.
//
// text (for scripts, like the AWS CLI's text output):
//   - the operation's value alone when it has one (OperationDoc.text_value:
//     get-secret-value's secret string, get-parameter's value...) followed
//     by one newline; bytes in base64; the value exactly as it is. An
//     operation with several values (create-access-key's id and secret)
//     prints them on one line, tab-separated, escaped as below
//   - otherwise, for a list, one line per element with every cell of the
//     element type in field order, tab-separated (empty cells included,
//     so that columns never move); for one object, one such line for it.
//     Then one line per other field that is set, starting with its name in
//     capitals (NEXT_TOKEN\t<token>, ROTATION_RULES\t...). Tabs, newlines
//     and backslashes inside values read \t, \n and \\.
//   - nothing at all for an empty response
// table (for people):
//   - a list: a header and one row per element, in the operation's
//     table_columns or else every column with a value in some row; then the
//     other fields that are set as key/value rows
//   - one object: a key/value row per field that is set (nested objects
//     flattened: rotation_rules.duration), nested lists as tables below
//   - control characters in values are escaped (\n, \t, \x1b)
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace coffer::cofferctl {

// --output=text of a unary response; `text_value` as in OperationDoc.
std::string FormatText(const google::protobuf::Message& response, absl::string_view text_value);

// One line of --output=text for a message of a server stream: its cells,
// tab-separated.
std::string FormatTextLine(const google::protobuf::Message& message);

// --output=table of a unary response; `columns` as OperationDoc's
// table_columns.
std::string FormatTable(const google::protobuf::Message& response,
                        const std::vector<std::string>& columns);

}  // namespace coffer::cofferctl

// SSM Parameter Store: request bodies as the AWS CLI and SDKs send them, and
// the exact JSON of responses.
#include <gtest/gtest.h>

#include "coffer/params/v1/params.pb.h"
#include "tests/services/gateway/gateway_test_util.h"

namespace coffer::gateway {
namespace {

using namespace coffer::params::v1;  // NOLINT: test brevity
using testing::Described;
using testing::Proto;
using testing::ProtoEq;
using testing::ReadError;
using testing::ReadRequest;
using testing::WriteResponse;

TEST(AwsJsonParamsTest, PutParameterRequest) {
  auto req = ReadRequest<PutParameterRequest>(
      "AmazonSSM.PutParameter",
      R"({"Name":"/a/b","Value":"x","Type":"SecureString","Overwrite":true})");
  EXPECT_TRUE(ProtoEq(Proto<PutParameterRequest>(R"pb(
                        name: "/a/b"
                        value: "x"
                        type: PARAMETER_TYPE_SECURE_STRING
                        overwrite: true
                      )pb"),
                      req));

  req = ReadRequest<PutParameterRequest>(
      "AmazonSSM.PutParameter",
      R"({"Name":"/app/hosts","Value":"a,b","Type":"StringList","Description":"hosts",)"
      R"("KeyId":"alias/k","AllowedPattern":"^[a-z,]+$","Tags":[{"Key":"team","Value":"web"}],)"
      R"("Tier":"Advanced","Policies":"[]","DataType":"text"})");
  EXPECT_TRUE(ProtoEq(Proto<PutParameterRequest>(R"pb(
                        name: "/app/hosts"
                        value: "a,b"
                        type: PARAMETER_TYPE_STRING_LIST
                        description: "hosts"
                        key_id: "alias/k"
                        allowed_pattern: "^[a-z,]+$"
                        tags { key: "team" value: "web" }
                        tier: PARAMETER_TIER_ADVANCED
                        policies: "[]"
                        data_type: "text"
                      )pb"),
                      req));
  EXPECT_EQ(ReadRequest<PutParameterRequest>("AmazonSSM.PutParameter",
                                             R"({"Name":"/a","Value":"x","Type":"String"})")
                .type(),
            PARAMETER_TYPE_STRING);
}

TEST(AwsJsonParamsTest, PutParameterRefusesWhatCofferLacks) {
  EXPECT_EQ(Described(ReadError("AmazonSSM.PutParameter",
                                R"({"Name":"/a","Value":"x","Tier":"Intelligent-Tiering"})")),
            "ValidationException: Tier: must be one of Standard, Advanced");
  EXPECT_EQ(Described(ReadError("AmazonSSM.PutParameter",
                                R"({"Name":"/a","Value":"x","Type":"securestring"})")),
            "ValidationException: Type: must be one of String, StringList, SecureString");
  // Coffer's own spellings are not AWS's.
  for (const char* type :
       {"PARAMETER_TYPE_STRING", "UNSPECIFIED", "PARAMETER_TYPE_UNSPECIFIED", ""}) {
    EXPECT_EQ(ErrorReason(ReadError("AmazonSSM.PutParameter",
                                    absl::StrCat(R"({"Name":"/a","Type":")", type, R"("})"))),
              "ValidationException")
        << type;
  }
}

TEST(AwsJsonParamsTest, PutParameterResponse) {
  EXPECT_EQ(
      WriteResponse("AmazonSSM.PutParameter",
                    Proto<PutParameterResponse>(R"pb(version: 3 tier: PARAMETER_TIER_STANDARD)pb")),
      R"({"Version":3,"Tier":"Standard"})");
}

TEST(AwsJsonParamsTest, GetParameter) {
  auto req = ReadRequest<GetParameterRequest>("AmazonSSM.GetParameter",
                                              R"({"Name":"/a/b:3","WithDecryption":true})");
  EXPECT_TRUE(
      ProtoEq(Proto<GetParameterRequest>(R"pb(name: "/a/b:3" with_decryption: true)pb"), req));

  auto resp = Proto<GetParameterResponse>(R"pb(
    parameter {
      name: "/a/b"
      type: PARAMETER_TYPE_SECURE_STRING
      value: "s3cr3t"
      version: 3
      selector: ":3"
      last_modified_date { seconds: 1700000000 nanos: 250000000 }
      arn: "arn:coffer:ssm:local:000000000000:parameter/a/b"
      data_type: "text"
    }
  )pb");
  EXPECT_EQ(WriteResponse("AmazonSSM.GetParameter", resp),
            R"({"Parameter":{"Name":"/a/b","Type":"SecureString","Value":"s3cr3t","Version":3,)"
            R"("Selector":":3","LastModifiedDate":1700000000.25,)"
            R"("ARN":"arn:coffer:ssm:local:000000000000:parameter/a/b","DataType":"text"}})");
}

TEST(AwsJsonParamsTest, GetParameters) {
  auto req = ReadRequest<GetParametersRequest>(
      "AmazonSSM.GetParameters", R"({"Names":["/a","/b:label"],"WithDecryption":false})");
  EXPECT_TRUE(ProtoEq(Proto<GetParametersRequest>(R"pb(names: "/a" names: "/b:label")pb"), req));

  auto resp = Proto<GetParametersResponse>(R"pb(
    parameters { name: "/a" type: PARAMETER_TYPE_STRING value: "1" version: 1 }
  )pb");
  EXPECT_EQ(WriteResponse("AmazonSSM.GetParameters", resp),
            R"({"Parameters":[{"Name":"/a","Type":"String","Value":"1","Version":1}],)"
            R"("InvalidParameters":[]})");
  EXPECT_EQ(WriteResponse("AmazonSSM.GetParameters",
                          Proto<GetParametersResponse>(R"pb(invalid_parameters: "/b")pb")),
            R"({"Parameters":[],"InvalidParameters":["/b"]})");
}

TEST(AwsJsonParamsTest, GetParametersByPath) {
  auto req = ReadRequest<GetParametersByPathRequest>(
      "AmazonSSM.GetParametersByPath",
      R"({"Path":"/app","Recursive":true,"WithDecryption":true,"MaxResults":10,"NextToken":"t",)"
      R"("ParameterFilters":[{"Key":"Type","Option":"Equals","Values":["SecureString"]},)"
      R"({"Key":"Label","Values":["prod"]}]})");
  EXPECT_TRUE(ProtoEq(Proto<GetParametersByPathRequest>(R"pb(
                        path: "/app"
                        recursive: true
                        with_decryption: true
                        max_results: 10
                        next_token: "t"
                        parameter_filters { key: "Type" option: "Equals" values: "SecureString" }
                        parameter_filters { key: "Label" values: "prod" }
                      )pb"),
                      req));
  auto resp = Proto<GetParametersByPathResponse>(R"pb(
    parameters { name: "/app/x" type: PARAMETER_TYPE_STRING value: "1" version: 2 }
    next_token: "next"
  )pb");
  EXPECT_EQ(WriteResponse("AmazonSSM.GetParametersByPath", resp),
            R"({"Parameters":[{"Name":"/app/x","Type":"String","Value":"1","Version":2}],)"
            R"("NextToken":"next"})");
  // A short page may be empty and still carry a token.
  EXPECT_EQ(WriteResponse("AmazonSSM.GetParametersByPath",
                          Proto<GetParametersByPathResponse>(R"pb(next_token: "n")pb")),
            R"({"Parameters":[],"NextToken":"n"})");
}

TEST(AwsJsonParamsTest, DescribeParameters) {
  auto req = ReadRequest<DescribeParametersRequest>(
      "AmazonSSM.DescribeParameters",
      R"({"ParameterFilters":[{"Key":"Path","Option":"Recursive","Values":["/app"]},)"
      R"({"Key":"tag:team","Values":["web"]}],"MaxResults":50,"Filters":[]})");
  EXPECT_TRUE(ProtoEq(Proto<DescribeParametersRequest>(R"pb(
                        parameter_filters { key: "Path" option: "Recursive" values: "/app" }
                        parameter_filters { key: "tag:team" values: "web" }
                        max_results: 50
                      )pb"),
                      req));
  EXPECT_EQ(Described(ReadError("AmazonSSM.DescribeParameters",
                                R"({"Filters":[{"Key":"Name","Values":["/a"]}]})")),
            "ValidationException: Filters: is not supported by Coffer");

  auto resp = Proto<DescribeParametersResponse>(R"pb(
    parameters {
      name: "/app/db"
      type: PARAMETER_TYPE_SECURE_STRING
      key_id: "alias/coffer/ssm"
      last_modified_date { seconds: 1700000000 }
      description: "db"
      version: 4
      tier: PARAMETER_TIER_ADVANCED
      policies {
        policy_text: "{\"Type\":\"Expiration\"}"
        policy_type: "Expiration"
        policy_status: "Pending"
      }
      data_type: "text"
      arn: "arn:coffer:ssm:local:000000000000:parameter/app/db"
    }
  )pb");
  EXPECT_EQ(WriteResponse("AmazonSSM.DescribeParameters", resp),
            R"({"Parameters":[{"Name":"/app/db","Type":"SecureString","KeyId":"alias/coffer/ssm",)"
            R"("LastModifiedDate":1700000000,"Description":"db","Version":4,"Tier":"Advanced",)"
            R"("Policies":[{"PolicyText":"{\"Type\":\"Expiration\"}","PolicyType":"Expiration",)"
            R"("PolicyStatus":"Pending"}],"DataType":"text",)"
            R"("ARN":"arn:coffer:ssm:local:000000000000:parameter/app/db"}]})");
}

TEST(AwsJsonParamsTest, GetParameterHistory) {
  auto req = ReadRequest<GetParameterHistoryRequest>(
      "AmazonSSM.GetParameterHistory",
      R"({"Name":"/a","WithDecryption":true,"MaxResults":50,"NextToken":"t"})");
  EXPECT_TRUE(ProtoEq(Proto<GetParameterHistoryRequest>(R"pb(name: "/a"
                                                             with_decryption: true
                                                             max_results: 50
                                                             next_token: "t")pb"),
                      req));
  auto resp = Proto<GetParameterHistoryResponse>(R"pb(
    parameters {
      name: "/a"
      type: PARAMETER_TYPE_STRING
      value: "1"
      version: 1
      labels: "prod"
      labels: "blue"
      tier: PARAMETER_TIER_STANDARD
      last_modified_date { seconds: 1700000000 }
    }
  )pb");
  EXPECT_EQ(WriteResponse("AmazonSSM.GetParameterHistory", resp),
            R"({"Parameters":[{"Name":"/a","Type":"String","LastModifiedDate":1700000000,)"
            R"("Value":"1","Version":1,"Labels":["prod","blue"],"Tier":"Standard"}]})");
}

TEST(AwsJsonParamsTest, DeleteParameters) {
  EXPECT_EQ(
      ReadRequest<DeleteParameterRequest>("AmazonSSM.DeleteParameter", R"({"Name":"/a"})").name(),
      "/a");
  EXPECT_EQ(WriteResponse("AmazonSSM.DeleteParameter", DeleteParameterResponse()), "{}");
  auto req = ReadRequest<DeleteParametersRequest>("AmazonSSM.DeleteParameters",
                                                  R"({"Names":["/a","/b"]})");
  EXPECT_EQ(req.names_size(), 2);
  EXPECT_EQ(WriteResponse("AmazonSSM.DeleteParameters",
                          Proto<DeleteParametersResponse>(R"pb(deleted_parameters: "/a")pb")),
            R"({"DeletedParameters":["/a"],"InvalidParameters":[]})");
}

TEST(AwsJsonParamsTest, Labels) {
  auto req = ReadRequest<LabelParameterVersionRequest>(
      "AmazonSSM.LabelParameterVersion",
      R"({"Name":"/a","ParameterVersion":3,"Labels":["prod","9bad"]})");
  EXPECT_TRUE(ProtoEq(Proto<LabelParameterVersionRequest>(R"pb(name: "/a"
                                                               parameter_version: 3
                                                               labels: "prod"
                                                               labels: "9bad")pb"),
                      req));
  EXPECT_EQ(WriteResponse("AmazonSSM.LabelParameterVersion",
                          Proto<LabelParameterVersionResponse>(R"pb(parameter_version: 3)pb")),
            R"({"InvalidLabels":[],"ParameterVersion":3})");
  EXPECT_EQ(WriteResponse("AmazonSSM.UnlabelParameterVersion",
                          Proto<UnlabelParameterVersionResponse>(R"pb(removed_labels: "prod")pb")),
            R"({"RemovedLabels":["prod"],"InvalidLabels":[]})");
}

TEST(AwsJsonParamsTest, Tags) {
  auto req = ReadRequest<AddTagsToResourceRequest>(
      "AmazonSSM.AddTagsToResource",
      R"({"ResourceType":"Parameter","ResourceId":"/a","Tags":[{"Key":"team","Value":"web"}]})");
  EXPECT_TRUE(ProtoEq(Proto<AddTagsToResourceRequest>(R"pb(
                        resource_type: "Parameter"
                        resource_id: "/a"
                        tags { key: "team" value: "web" }
                      )pb"),
                      req));
  auto remove = ReadRequest<RemoveTagsFromResourceRequest>(
      "AmazonSSM.RemoveTagsFromResource",
      R"({"ResourceType":"Parameter","ResourceId":"/a","TagKeys":["team"]})");
  EXPECT_EQ(remove.tag_keys(0), "team");
  EXPECT_EQ(
      WriteResponse("AmazonSSM.ListTagsForResource",
                    Proto<ListTagsForResourceResponse>(R"pb(tag_list { key: "team" value: "web" }
                                                            tag_list { key: "x" })pb")),
      R"({"TagList":[{"Key":"team","Value":"web"},{"Key":"x","Value":""}]})");
  EXPECT_EQ(WriteResponse("AmazonSSM.ListTagsForResource", ListTagsForResourceResponse()),
            R"({"TagList":[]})");
}

}  // namespace
}  // namespace coffer::gateway

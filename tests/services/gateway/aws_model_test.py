#!/usr/bin/python3
"""coffer-gateway's AWS JSON, checked against botocore's service models.

Usage: aws_model_test.py <gateway_shapes_dump>

gateway_shapes_dump prints, for every AwsOperation, the request members the
gateway accepts and the response members it writes (with their JSON types
and enum values), the response it writes for a message with every field
set, and whether a request with every accepted member set is read; and the
error types it answers per service. This test loads the Secrets Manager,
SSM and KMS models of Debian's python3-botocore and checks:

  - every target's prefix is the model's targetPrefix, its signing service
    the model's signingName, and the operation exists in the model;
  - every request member the gateway accepts exists in the model's input
    shape at that place with a compatible type, and every enum string it
    accepts is in the model's enum;
  - every member the model's input requires is accepted;
  - every member of the sample response exists in the model's output shape
    at that place, its JSON value of a compatible type (blobs base64,
    timestamps numbers), its enum strings in the model's enum;
  - every member the response shape declares is in the sample (the writer
    writes every field that is set), every enum string the gateway can
    write is in the model's enum, and members the model's output requires
    are always sent;
  - the sample request is read without error;
  - every error type is an exception of that service's model, or one of the
    service-independent types below.

Debian 12's botocore (1.29.27) predates a few things AWS added later and
Coffer has; LATER_MODEL_ADDITIONS holds them as botocore 1.43.67's models
spell them, applied only where the installed model lacks them (so a newer
botocore checks them for real). Any intentional deviation is in ALLOWED
with its reason; a finding not in ALLOWED fails the test, and so does an
ALLOWED entry that matches nothing (it has gone stale). Without
python3-botocore the test fails: scripts/lib.sh installs it.
"""

import base64
import binascii
import json
import subprocess
import sys

SERVICES = {  # X-Amz-Target prefix -> botocore service name
    'secretsmanager': 'secretsmanager',
    'AmazonSSM': 'ssm',
    'TrentService': 'kms',
}

# Shapes, members and operations AWS added after botocore 1.29.27 (Debian
# 12), as botocore 1.43.67 has them (only the parts Coffer uses).
LATER_MODEL_ADDITIONS = {
    'secretsmanager': {
        # 2023-11 (botocore 1.32.x): BatchGetSecretValue.
        'operations': {
            'BatchGetSecretValue': ('BatchGetSecretValueRequest', 'BatchGetSecretValueResponse'),
        },
        'shapes': {
            'BatchGetSecretValueRequest': {'type': 'structure', 'members': {
                'SecretIdList': {'shape': 'SecretIdListType'},
                'Filters': {'shape': 'FiltersListType'},
                'MaxResults': {'shape': 'MaxResultsBatchType'},
                'NextToken': {'shape': 'NextTokenType'}}},
            'SecretIdListType': {'type': 'list', 'member': {'shape': 'SecretIdType'}},
            'MaxResultsBatchType': {'type': 'integer'},
            'BatchGetSecretValueResponse': {'type': 'structure', 'members': {
                'SecretValues': {'shape': 'SecretValuesType'},
                'NextToken': {'shape': 'NextTokenType'},
                'Errors': {'shape': 'APIErrorListType'}}},
            'SecretValuesType': {'type': 'list', 'member': {'shape': 'SecretValueEntry'}},
            'SecretValueEntry': {'type': 'structure', 'members': {
                'ARN': {'shape': 'SecretARNType'},
                'Name': {'shape': 'SecretNameType'},
                'VersionId': {'shape': 'SecretVersionIdType'},
                'SecretBinary': {'shape': 'SecretBinaryType'},
                'SecretString': {'shape': 'SecretStringType'},
                'VersionStages': {'shape': 'SecretVersionStagesType'},
                'CreatedDate': {'shape': 'CreatedDateType'}}},
            'APIErrorListType': {'type': 'list', 'member': {'shape': 'APIErrorType'}},
            'APIErrorType': {'type': 'structure', 'members': {
                'SecretId': {'shape': 'SecretIdType'},
                'ErrorCode': {'shape': 'ErrorCode'},
                'Message': {'shape': 'ErrorMessage'}}},
            'ErrorCode': {'type': 'string'},
            'NextRotationDateType': {'type': 'timestamp'},
        },
        # 2022-12-29: NextRotationDate and ListSecrets' IncludePlannedDeletion.
        'members': {
            'DescribeSecretResponse': {'NextRotationDate': 'NextRotationDateType'},
            'SecretListEntry': {'NextRotationDate': 'NextRotationDateType'},
            'ListSecretsRequest': {'IncludePlannedDeletion': 'BooleanType'},
        },
    },
    'ssm': {
        'shapes': {
            # 2024-11: SSM models the ValidationException it has always sent.
            'ValidationException': {'type': 'structure', 'exception': True, 'members': {
                'Message': {'shape': 'String'},
                'ReasonCode': {'shape': 'String'}}},
        },
        # 2024-02: DescribeParameters returns each parameter's ARN.
        'members': {'ParameterMetadata': {'ARN': 'String'}},
    },
    'kms': {
        # 2024-04 (botocore 1.34.8x): on-demand rotation, rotation periods.
        'operations': {
            'RotateKeyOnDemand': ('RotateKeyOnDemandRequest', 'RotateKeyOnDemandResponse'),
            'ListKeyRotations': ('ListKeyRotationsRequest', 'ListKeyRotationsResponse'),
        },
        'shapes': {
            'RotateKeyOnDemandRequest': {'type': 'structure', 'required': ['KeyId'],
                                         'members': {'KeyId': {'shape': 'KeyIdType'}}},
            'RotateKeyOnDemandResponse': {'type': 'structure',
                                          'members': {'KeyId': {'shape': 'KeyIdType'}}},
            'ListKeyRotationsRequest': {'type': 'structure', 'required': ['KeyId'], 'members': {
                'KeyId': {'shape': 'KeyIdType'},
                'Limit': {'shape': 'LimitType'},
                'Marker': {'shape': 'MarkerType'}}},
            'ListKeyRotationsResponse': {'type': 'structure', 'members': {
                'Rotations': {'shape': 'RotationsList'},
                'NextMarker': {'shape': 'MarkerType'},
                'Truncated': {'shape': 'BooleanType'}}},
            'RotationsList': {'type': 'list', 'member': {'shape': 'RotationsListEntry'}},
            'RotationsListEntry': {'type': 'structure', 'members': {
                'KeyId': {'shape': 'KeyIdType'},
                'RotationDate': {'shape': 'DateType'},
                'RotationType': {'shape': 'RotationType'}}},
            'RotationType': {'type': 'string', 'enum': ['AUTOMATIC', 'ON_DEMAND']},
            'RotationPeriodInDaysType': {'type': 'integer'},
        },
        'members': {
            'EnableKeyRotationRequest': {'RotationPeriodInDays': 'RotationPeriodInDaysType'},
            'GetKeyRotationStatusResponse': {'KeyId': 'KeyIdType',
                                             'RotationPeriodInDays': 'RotationPeriodInDaysType',
                                             'NextRotationDate': 'DateType'},
        },
    },
}

# Error types of the gateway that are no model's exception shape: the AWS
# JSON protocol's and SigV4's own, answered by every service.
COMMON_ERROR_TYPES = {
    'AccessDeniedException': 'AWS common error (403 in the query protocol, 400 from JSON services)',
    'ThrottlingException': 'AWS common error; botocore retries it',
    'SerializationException': 'the JSON protocol\'s error for a body that does not parse',
    'UnknownOperationException': 'the JSON protocol\'s error for an unknown X-Amz-Target',
    'MissingAuthenticationTokenException': 'SigV4: no Authorization (libs/sigv4)',
    'IncompleteSignatureException': 'SigV4: malformed Authorization (libs/sigv4)',
    'InvalidSignatureException': 'SigV4: signature mismatch or clock skew (libs/sigv4)',
    'UnrecognizedClientException': 'SigV4: unknown access key (libs/sigv4)',
    'ServiceUnavailable': 'AWS common error, HTTP 503; botocore retries it',
    'InternalFailure': 'AWS common error, HTTP 500, when no operation is known',
    'RequestTimeoutException': 'a transient error code botocore retries; HTTP 504',
}

# Intentional deviations: (check, target, path) -> reason.
ALLOWED = {
    ('response-enum-value', 'TrentService.Encrypt', 'EncryptionAlgorithm'):
        'kms.proto: encryption_algorithm is a string Coffer fills with SYMMETRIC_DEFAULT',
    ('response-enum-value', 'TrentService.Decrypt', 'EncryptionAlgorithm'):
        'kms.proto: encryption_algorithm is a string Coffer fills with SYMMETRIC_DEFAULT',
    ('response-enum-value', 'TrentService.CreateKey', 'KeyMetadata.EncryptionAlgorithms[]'):
        'kms.proto: encryption_algorithms are strings, always ["SYMMETRIC_DEFAULT"]',
    ('response-enum-value', 'TrentService.DescribeKey', 'KeyMetadata.EncryptionAlgorithms[]'):
        'kms.proto: encryption_algorithms are strings, always ["SYMMETRIC_DEFAULT"]',
    ('error-type', 'TrentService', 'ValidationException'):
        'not modeled, but what AWS KMS answers for a member that breaks its constraints '
        '("1 validation error detected: ..."); Coffer\'s KMS uses it too (kms-api.md)',
}


class Checker:
    def __init__(self, models):
        self.models = models
        self.findings = {}  # (check, target, path) -> message
        self.notes = []

    def find(self, check, target, path, message):
        self.findings.setdefault((check, target, path), message)

    # ---- model helpers ----

    @staticmethod
    def compatible(gw_type, model_type):
        return {
            'string': ('string',), 'boolean': ('boolean',), 'integer': ('integer', 'long'),
            'number': ('float', 'double', 'integer', 'long'), 'timestamp': ('timestamp',),
            'blob': ('blob',), 'list': ('list',), 'map': ('map',), 'structure': ('structure',),
        }.get(gw_type, ()).count(model_type) > 0

    # ---- shapes: what the gateway reads and writes ----

    def shape(self, target, model, gw, model_name, path, request, only_empty=False):
        S = model['shapes']
        only_empty = only_empty or gw.get('note') == 'only empty'
        ms = S[model_name]
        side = 'request' if request else 'response'
        if not self.compatible(gw['type'], ms['type']):
            self.find(side + '-type', target, path,
                      'gateway %s, model %s (%s)' % (gw['type'], ms['type'], model_name))
            return
        if gw.get('enum') and 'enum' in ms:
            for value in gw['enum']:
                if value not in ms['enum']:
                    self.find(side + '-enum', target, path,
                              '%r not in the model\'s %s' % (value, ms['enum']))
            if request:
                narrower = [v for v in ms['enum'] if v not in gw['enum']]
                if narrower:
                    self.notes.append('%s %s: Coffer accepts %s of %s' % (
                        target, path, gw['enum'], ms['enum']))
        if ms['type'] == 'structure':
            members = ms.get('members', {})
            for name, member in gw.get('members', {}).items():
                sub = name if not path else path + '.' + name
                if name not in members:
                    self.find(side + '-member', target, sub,
                              'not a member of %s' % model_name)
                    continue
                self.shape(target, model, member, members[name]['shape'], sub, request,
                           only_empty)
            for name in ms.get('required', []):
                sub = name if not path else path + '.' + name
                gw_member = gw.get('members', {}).get(name)
                if request and gw_member is None and not only_empty:
                    self.find('request-required', target, sub,
                              'required by %s, not accepted' % model_name)
                if not request and gw_member is not None and not gw_member.get('always'):
                    self.find('response-required', target, sub,
                              'required in %s, not always sent' % model_name)
                if not request and gw_member is None:
                    self.find('response-required', target, sub,
                              'required in %s, never sent' % model_name)
        elif ms['type'] == 'list':
            self.shape(target, model, gw['member'], ms['member']['shape'], path + '[]', request,
                       only_empty)
        elif ms['type'] == 'map':
            self.shape(target, model, gw['member'], ms['value']['shape'], path + '{}', request,
                       only_empty)

    # ---- the sample response: what the gateway actually wrote ----

    def value(self, target, model, value, model_name, path):
        S = model['shapes']
        ms = S[model_name]
        t = ms['type']
        ok = {
            'string': lambda v: isinstance(v, str),
            'boolean': lambda v: isinstance(v, bool),
            'integer': lambda v: isinstance(v, int) and not isinstance(v, bool),
            'long': lambda v: isinstance(v, int) and not isinstance(v, bool),
            'float': lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
            'double': lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
            'timestamp': lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
            'blob': lambda v: isinstance(v, str),
            'list': lambda v: isinstance(v, list),
            'map': lambda v: isinstance(v, dict),
            'structure': lambda v: isinstance(v, dict),
        }[t]
        if not ok(value):
            self.find('response-value', target, path,
                      '%r is not a %s (%s)' % (value, t, model_name))
            return
        if t == 'blob':
            try:
                base64.b64decode(value, validate=True)
            except binascii.Error:
                self.find('response-value', target, path, '%r is not base64' % value)
        if t == 'string' and 'enum' in ms and value not in ms['enum']:
            self.find('response-enum-value', target, path,
                      '%r not in the model\'s %s' % (value, ms['enum']))
        if t == 'structure':
            members = ms.get('members', {})
            for name, sub in value.items():
                p = name if not path else path + '.' + name
                if name not in members:
                    self.find('response-member', target, p, 'not a member of %s' % model_name)
                    continue
                self.value(target, model, sub, members[name]['shape'], p)
        elif t == 'list':
            for item in value:
                self.value(target, model, item, ms['member']['shape'], path + '[]')
        elif t == 'map':
            for item in value.values():
                self.value(target, model, item, ms['value']['shape'], path + '{}')

    def sample_covers_shape(self, target, gw, value, path):
        """Every member of the response shape appears in the every-field sample."""
        if gw['type'] == 'structure':
            for name, member in gw.get('members', {}).items():
                p = name if not path else path + '.' + name
                if not isinstance(value, dict) or name not in value:
                    self.find('sample-missing', target, p, 'declared but not written')
                    continue
                self.sample_covers_shape(target, member, value[name], p)
        elif gw['type'] == 'list' and isinstance(value, list) and value:
            self.sample_covers_shape(target, gw['member'], value[0], path + '[]')
        elif gw['type'] == 'map' and isinstance(value, dict) and value:
            self.sample_covers_shape(target, gw['member'], next(iter(value.values())),
                                     path + '{}')

    # ---- per operation ----

    def operation(self, op):
        target = op['target']
        prefix, name = target.split('.', 1)
        model = self.models[prefix]
        meta = model['metadata']
        if meta.get('targetPrefix') != prefix:
            self.find('target-prefix', target, '', 'model prefix %s' % meta.get('targetPrefix'))
        signing = meta.get('signingName', meta.get('endpointPrefix'))
        if op['signing_service'] != signing:
            self.find('signing-service', target, '', 'model signs for %s' % signing)
        if op['sample_request_error']:
            self.find('sample-request', target, '', op['sample_request_error'])
        if name not in model['operations']:
            self.find('operation', target, '', 'not an operation of the model')
            return
        mop = model['operations'][name]
        if 'input' in mop:
            self.shape(target, model, op['request'], mop['input']['shape'], '', True)
        elif op['request'].get('members'):
            self.find('request-member', target, '', 'the model\'s operation takes no input')
        if 'output' in mop:
            self.shape(target, model, op['response'], mop['output']['shape'], '', False)
            self.value(target, model, op['sample_response'], mop['output']['shape'], '')
        elif op['response'].get('members') or op['sample_response']:
            self.find('response-member', target, '', 'the model\'s operation has no output')
        self.sample_covers_shape(target, op['response'], op['sample_response'], '')

    def errors(self, errors):
        for prefix, types in errors.items():
            if prefix == 'common':
                for t in types:
                    if t not in COMMON_ERROR_TYPES:
                        self.find('error-type', 'common', t, 'not a documented common type')
                continue
            shapes = self.models[prefix]['shapes']
            for t in types:
                if not shapes.get(t, {}).get('exception'):
                    self.find('error-type', prefix, t,
                              'not an exception of the %s model' % SERVICES[prefix])


def supplement(name, model, notes):
    add = LATER_MODEL_ADDITIONS.get(name, {})
    shapes = model['shapes']
    for shape_name, shape in add.get('shapes', {}).items():
        shapes.setdefault(shape_name, shape)
    for shape_name, members in add.get('members', {}).items():
        for member, member_shape in members.items():
            if member not in shapes[shape_name]['members']:
                shapes[shape_name]['members'][member] = {'shape': member_shape}
                notes.append('%s: %s.%s from a later model' % (name, shape_name, member))
    for op, (in_shape, out_shape) in add.get('operations', {}).items():
        if op not in model['operations']:
            model['operations'][op] = {'name': op, 'input': {'shape': in_shape},
                                       'output': {'shape': out_shape}}
            notes.append('%s: operation %s from a later model' % (name, op))
    # Every shape a supplement names must now exist.
    for shape_name, shape in shapes.items():
        refs = [m['shape'] for m in shape.get('members', {}).values()]
        refs += [shape[k]['shape'] for k in ('member', 'key', 'value') if k in shape]
        for ref in refs:
            if ref not in shapes:
                raise SystemExit('FAIL: %s model: %s names missing shape %s'
                                 % (name, shape_name, ref))


def main():
    if len(sys.argv) != 2:
        raise SystemExit('usage: aws_model_test.py <gateway_shapes_dump>')
    try:
        import botocore
        import botocore.loaders
    except ImportError:
        print('FAIL: python3-botocore is not installed (scripts/lib.sh installs it); '
              'the model check cannot run without botocore\'s service models')
        return 1
    loader = botocore.loaders.create_loader()
    models, notes = {}, []
    for prefix, name in SERVICES.items():
        models[prefix] = loader.load_service_model(name, 'service-2')
        supplement(name, models[prefix], notes)
    print('botocore %s' % botocore.__version__)

    dump = json.loads(subprocess.run([sys.argv[1]], check=True, stdout=subprocess.PIPE).stdout)
    checker = Checker(models)
    for op in dump['operations']:
        checker.operation(op)
    checker.errors(dump['errors'])

    for note in notes + checker.notes:
        print('note: ' + note)
    failed = False
    for key, message in sorted(checker.findings.items()):
        if key in ALLOWED:
            print('allowed: %s %s %s: %s (%s)' % (key + (message, ALLOWED[key])))
        else:
            print('FAIL: %s %s %s: %s' % (key + (message,)))
            failed = True
    for key, reason in sorted(ALLOWED.items()):
        if key not in checker.findings:
            print('FAIL: stale allow-list entry %s %s %s (%s)' % (key + (reason,)))
            failed = True
    print('%d operations checked against botocore\'s models: %s' % (
        len(dump['operations']), 'FAILED' if failed else 'ok'))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())

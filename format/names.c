/* SPDX-License-Identifier: MIT */
/* format: names of kinds, roles, digests and tags, as CUCM's `show itl` prints them. */
#include "format/internal.h"

#include <openssl/obj_mac.h>
#include <string.h>
#include <strings.h>

const char *itl_kind_name(enum itl_kind kind)
{
    switch (kind) {
    case ITL_KIND_TLV:
        return "tlv";
    case ITL_KIND_SGN:
        return "sgn";
    case ITL_KIND_ENC_SGN:
        return "enc.sgn";
    default:
        return "auto";
    }
}

const char *itl_role_name(unsigned function)
{
    switch (function) {
    case ITL_ROLE_SAST:
        return "System Administrator Security Token";
    case ITL_ROLE_CCM:
        return "CCM";
    case ITL_ROLE_CCM_TFTP:
        return "CCM+TFTP";
    case ITL_ROLE_TFTP:
        return "TFTP";
    case ITL_ROLE_CAPF:
        return "CAPF";
    case ITL_ROLE_SRST:
        return "SRST";
    case ITL_ROLE_APP_SERVER:
        return "APP-SERVER";
    case ITL_ROLE_TVS:
        return "TVS";
    default:
        return "UNKNOWN";
    }
}

const char *itl_digest_name(int digest)
{
    switch (digest) {
    case ITL_DIGEST_SHA1:
        return "SHA-1";
    case ITL_DIGEST_SHA256:
        return "SHA-256";
    case ITL_DIGEST_SHA512:
        return "SHA-512";
    default:
        return NULL;
    }
}

int itl_digest_from_name(const char *name)
{
    static const struct {
        const char *name;
        int code;
    } names[] = {
        {"sha1", ITL_DIGEST_SHA1},     {"sha-1", ITL_DIGEST_SHA1},
        {"sha256", ITL_DIGEST_SHA256}, {"sha-256", ITL_DIGEST_SHA256},
        {"sha512", ITL_DIGEST_SHA512}, {"sha-512", ITL_DIGEST_SHA512},
    };

    if (!name)
        return -1;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(name, names[i].name) == 0)
            return names[i].code;
    return -1;
}

int itl_digest_nid(int digest)
{
    switch (digest) {
    case ITL_DIGEST_SHA1:
        return NID_sha1;
    case ITL_DIGEST_SHA256:
        return NID_sha256;
    case ITL_DIGEST_SHA512:
        return NID_sha512;
    default:
        return 0;
    }
}

const char *itl_header_tag_name(unsigned tag)
{
    static const char *const names[] = {
        [HDR_VERSION] = "VERSION",
        [HDR_LENGTH] = "HEADERLENGTH",
        [HDR_SIGNER_INFO] = "SIGNERID",
        [HDR_SIGNER_NAME] = "SIGNERNAME",
        [HDR_SERIAL] = "SERIALNUMBER",
        [HDR_CA_NAME] = "CANAME",
        [HDR_SIGNATURE_INFO] = "SIGNATUREINFO",
        [HDR_DIGEST] = "DIGESTALGORITHM",
        [HDR_ALGO_INFO] = "SIGNATUREALGOINFO",
        [HDR_SIG_ALGORITHM] = "SIGNATUREALGORITHM",
        [HDR_SIG_MODULUS] = "SIGNATUREMODULUS",
        [HDR_SIGNATURE] = "SIGNATURE",
        [HDR_PADDING] = "PADDING",
        [HDR_FILENAME] = "FILENAME",
        [HDR_TIMESTAMP] = "TIMESTAMP",
        [HDR_ENC_INFO] = "ENCRYPTIONINFO",
        [HDR_ENC_IV_INFO] = "ENCRYPTIONIVINFO",
        [HDR_ENC_UNKNOWN1] = "ENCRYPTIONUNKNOWN1",
        [HDR_ENC_IV] = "ENCRYPTIONIV",
        [HDR_ENC_PADDING] = "ENCRYPTIONPADDING",
        [HDR_ENC_KEY_INFO] = "ENCRYPTIONKEYINFO",
        [HDR_ENC_UNKNOWN2] = "ENCRYPTIONUNKNOWN2",
        [HDR_ENC_KEY_SIZE] = "ENCRYPTIONKEYSIZE",
        [HDR_ENC_KEY_ALGORITHM] = "ENCRYPTIONKEYALGORITHM",
        [HDR_ENC_KEY] = "ENCRYPTIONKEY",
        [HDR_ENC_HASH_ALGORITHM] = "ENCRYPTIONHASHALGORITHM",
        [HDR_ENC_HASH] = "ENCRYPTIONHASH",
        [HDR_SIGNER_VERSION] = "SIGNERVERSION",
    };

    if (tag < sizeof names / sizeof names[0] && names[tag])
        return names[tag];
    return "UNKNOWN";
}

const char *itl_record_tag_name(unsigned tag)
{
    static const char *const names[] = {
        [REC_LENGTH] = "RECORDLENGTH",     [REC_DNSNAME] = "DNSNAME",
        [REC_SUBJECT] = "SUBJECTNAME",     [REC_FUNCTION] = "FUNCTION",
        [REC_ISSUER] = "ISSUERNAME",       [REC_SERIAL] = "SERIALNUMBER",
        [REC_PUBLIC_KEY] = "PUBLICKEY",    [REC_SIGNATURE] = "SIGNATURE",
        [REC_CERTIFICATE] = "CERTIFICATE", [REC_IPADDRESS] = "IPADDRESS",
        [REC_CERTHASH] = "CERTHASH",       [REC_HASH_ALGORITHM] = "HASH ALGORITHM",
    };

    if (tag < sizeof names / sizeof names[0] && names[tag])
        return names[tag];
    return "UNKNOWN";
}

/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the itl-signd frame header and request/reply decoders. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "signer/signer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sgn_cert_arg certs[SGN_MAX_BUILD_CERTS];
    struct sgn_request req;
    struct sgn_result r;
    struct itl_error err;
    char *json = NULL;
    size_t len;
    uint8_t *frame;
    size_t frame_len;

    if (size >= SGN_WIRE_HEADER_LEN) {
        sgn_wire_header(data, SGN_FRAME_REQUEST, SGN_WIRE_DEFAULT_MAX, &len, &err);
        sgn_wire_header(data, SGN_FRAME_REPLY, SGN_WIRE_DEFAULT_MAX, &len, &err);
    }
    if (sgn_wire_decode_request(data, size, &req, certs, &err) == 0) {
        /* Whatever decodes must encode again and decode to the same request. */
        if (sgn_wire_encode_request(&req, &frame, &frame_len) == 0) {
            struct sgn_request again;
            static struct sgn_cert_arg certs2[SGN_MAX_BUILD_CERTS];
            if (sgn_wire_decode_request(frame + SGN_WIRE_HEADER_LEN,
                                        frame_len - SGN_WIRE_HEADER_LEN, &again, certs2,
                                        &err) != 0 ||
                again.op != req.op || again.len != req.len || again.n_certs != req.n_certs)
                abort();
            free(frame);
        }
    }
    if (sgn_wire_decode_reply(data, size, &r, &json, &err) == 0) {
        sgn_result_free(&r);
        free(json);
    }
    return 0;
}

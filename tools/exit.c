/* SPDX-License-Identifier: MIT */
/* The one mapping from an error class to an exit code (itl-sign(1), EXIT STATUS). */
#include "tools/cli.h"

#include "common/common.h"

int cli_exit_for_io(const struct itl_error *err, enum cli_exit io_exit)
{
    switch (err->cls) {
    case ITL_E_NONE:
        return EXIT_OK;
    case ITL_E_USAGE:
        return EXIT_USAGE;
    case ITL_E_INPUT:
        return EXIT_INPUT;
    case ITL_E_DENIED:
        return EXIT_DENIED;
    case ITL_E_IO:
        return io_exit;
    case ITL_E_VERIFY:
        return EXIT_INVALID;
    case ITL_E_MODULE:
    case ITL_E_NO_TOKEN:
    case ITL_E_AMBIGUOUS:
    case ITL_E_PIN:
    case ITL_E_NO_KEY:
    case ITL_E_MECHANISM:
    case ITL_E_DEVICE:
        return EXIT_TOKEN;
    case ITL_E_INTERNAL:
        break;
    }
    /* Out of memory or a broken invariant; in service mode the engine's SGN_E_INTERNAL is
     * already EXIT_SERVICE (backend_exit_code), and direct mode answers the same. */
    return EXIT_SERVICE;
}

int cli_exit_for(const struct itl_error *err)
{
    return cli_exit_for_io(err, EXIT_INPUT);
}

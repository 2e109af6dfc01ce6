/* Undefines the macros one vector implementation in quantize_rows.c set for
   quantize_rows_simd.h, so that the next can define its own. */
#undef QR_NAME
#undef QR_ISA_NAME
#undef QR_TARGET
#undef QR_V
#undef QR_W
#undef QR_LOADU
#undef QR_STOREU
#undef QR_SET1
#undef QR_ADD
#undef QR_SUB
#undef QR_MUL
#undef QR_DIV
#undef QR_MAX
#undef QR_MIN
#undef QR_ABS
#undef QR_FMADD
#undef QR_ANY_GE
#undef QR_I32
#undef QR_STORE_UINT8
#undef QR_STORE_INT8
#undef QR_STORE_UINT16
#undef QR_STORE_INT16
#undef QR_WIDEN_UINT8
#undef QR_WIDEN_INT8
#undef QR_WIDEN_UINT16
#undef QR_WIDEN_INT16

// DFloat11 decode (df11_decode_body.wgsl) with the span prefix sum in workgroup memory (df11_scan.wgsl):
// for devices without the `subgroups` feature.
// #include df11_scan
// #include df11_decode_body

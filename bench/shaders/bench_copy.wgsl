// Bandwidth probe for benchmarks (bench/gpu-timing.ts benchCopy): dst = src, one vec4<u32> per step of a
// grid-stride loop, so any size runs with a fixed dispatch.

@group(0) @binding(0) var<storage, read> src: array<vec4<u32>>;        // (n)
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<u32>>;  // (n)

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let n = arrayLength(&src);
  let stride = groups.x * 256u;
  for (var i = gid.x; i < n; i += stride) {
    dst[i] = src[i];
  }
}

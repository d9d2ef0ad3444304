// SharedLLM (Han, Zhou, Poria, Yan; arXiv 2410.19318 v1, "Two are better than one: Context
// window extension with multi-grained self-injection"; ICLR 2026 version "Stacked from One").
//
// Two models built from ONE LLaMA checkpoint:
//   * the upper model: all N decoder layers, reading the running text X_D;
//   * the lower model: the first M layers of the same weights (`shares`), which compresses the
//     past context X_C.
// X_C is cut into n chunks of Lc tokens. Over each chunk a context tree of height 3 is built:
// level 1 splits the chunk into halves and a policy picks one half to expand while the other is
// "preserved"; level 2 splits the chosen half the same way; level 3 splits the chosen quarter and
// preserves both eighths. Each preserved node runs through the lower model; its per-layer keys and
// values are strided down by alpha = 16, 8, 4 at levels 1, 2, 3 (Lc = 64: 2 + 2 + 2*2 = 8 entries
// per chunk and layer, the compression ratio beta = 8). Upper layers 1..M then "self-inject" the
// compressed context by a cross-attention module (own RMSNorm, q_proj, o_proj, no k/v
// projections) placed between self-attention and the FFN, with chunk-level RoPE: queries at chunk
// position n, the keys of chunk i at position i.
//
// Entries: `encode_context` (compressed KV, "always right" policy), `encode_context_query_aware`
// (the query-aware policy), `forward` (logits of X_D given the context), `vanilla` (the plain
// LLaMA upper model without context), `generate` (greedy decoding with a KV cache over the
// running text, reusing the compressed context).
//
// Sizes: defaults are the CPU-test configuration. Paper (LLaMA-2-7B, language modelling):
//   --set vocab=32000 --set d=4096 --set heads=32 --set n_layers=32 --set ffn=11008 --set M=4
//   --set chunk_len=1024           (SFT: --set M=16 --set chunk_len=512; tree height 3, beta = 8)
// Invariant: with --set M=0 the upper model is vanilla LLaMA (`forward` equals `vanilla`).

import std.math
import std.nn
import std.attention

/// A LLaMA decoder layer with Hugging Face parameter names: input_layernorm, self_attn
/// (q/k/v/o_proj, no bias), post_attention_layernorm, mlp (SwiGLU). The attention half and the
/// FFN half are separate methods so that the upper model can place the self-injection module
/// between them.
block LlamaLayer(d: int, heads: int, ffn: int, rope_base: float, eps: float) {
  input_layernorm = RMSNorm(d, eps)
  self_attn = MultiHeadAttention(d, heads)
  post_attention_layernorm = RMSNorm(d, eps)
  mlp = SwiGLU(d, ffn)

  /// Causal self-attention half with token-level RoPE. x [R, T, d], pos i64 [T].
  /// Returns (x + attn, k, v) with k (RoPE applied) and v [R, H, T, dh].
  fn attn_block(x, pos) {
    let h = input_layernorm(x)
    let q = rope(split_heads(self_attn.q_proj(h), heads), pos, rope_base)
    let (k, v) = self_attn.project_kv(h)
    let k = rope(k, pos, rope_base)
    return x + self_attn.o_proj(merge_heads(attention(q, k, v, causal = true))), k, v
  }

  /// The same with a preallocated KV cache: x [B, n, d] are positions start .. start + n - 1;
  /// k_cache, v_cache [B, H, max_len, dh]; query i sees cache slots j <= start + i.
  /// Returns (x + attn, k_cache, v_cache) with the new keys/values written at `start`.
  fn attn_step(x, k_cache, v_cache, start) {
    let n = dim(x, 1)
    let pos = arange(n) + start
    let h = input_layernorm(x)
    let q = rope(split_heads(self_attn.q_proj(h), heads), pos, rope_base)
    let (k, v) = self_attn.project_kv(h)
    let k_cache = dynamic_update_slice(k_cache, rope(k, pos, rope_base), start, axis = 2)
    let v_cache = dynamic_update_slice(v_cache, v, start, axis = 2)
    let max_len = dim(k_cache, 2)
    let visible = iota([n, max_len], 1) <= iota([n, max_len], 0) + start
    return x + self_attn.o_proj(merge_heads(attention(q, k_cache, v_cache, mask = visible))), k_cache, v_cache
  }

  fn ffn_block(x) = x + mlp(post_attention_layernorm(x))

  fn forward(x, pos) {
    let (h, _, _) = attn_block(x, pos)
    return ffn_block(h)
  }
}

/// The self-injection (cross-attention) module of upper layers 1..M: its own RMSNorm, q_proj and
/// o_proj, and no key/value projections: keys and values are the lower model's compressed
/// layer-j KV. Queries get the chunk-level RoPE position `q_pos` (the same for every query);
/// attention is non-causal over all compressed entries.
/// x [B, T, d]; k, v [B, H, E, dh] -> x + injected [B, T, d].
block SelfInjection(d: int, heads: int, rope_base: float, eps: float) {
  norm = RMSNorm(d, eps)
  q_proj = Linear(d, d, has_bias = false)
  o_proj = Linear(d, d, has_bias = false)

  fn forward(x, k, v, q_pos) {
    let q = split_heads(q_proj(norm(x)), heads)
    let q = rope(q, full([dim(x, 1)], q_pos, dtype = i64), rope_base)
    return x + o_proj(merge_heads(attention(q, k, v)))
  }
}

model SharedLLM(
  vocab: int = 256,              // paper 32000 (LLaMA-2)
  d: int = 64,                   // paper 4096
  heads: int = 4,                // paper 32
  n_layers: int = 4,             // N, upper model depth: paper 32
  M: int = 2,                    // lower model depth = upper layers with self-injection: paper 4 (LM), 16 (SFT)
  ffn: int = 4 * d,              // SwiGLU inner size: paper 11008
  rope_base: float = 10000.0,
  rms_eps: float = 1e-5,         // LLaMA-2
  tie_embeddings: bool = false,  // LLaMA-2 has an untied lm_head
  chunk_len: int = 64,           // Lc: paper 1024 (LM), 512 (SFT)
  alpha1: int = 16,              // stride of the level-1 preserved node (half a chunk)
  alpha2: int = 8,               // stride of the level-2 preserved node (a quarter)
  alpha3: int = 4,               // stride of the two level-3 nodes (eighths)
  query_aware: bool = false,     // policy of `forward`/`generate`: false = "always right" (LM), true = query-aware (QA)
  query_chunk_offset: int = 0,   // queries sit at chunk position n + this (the repo uses 1)
  max_new: int = 8,              // tokens generated by `generate`
) {
  // compressed entries per chunk: Lc/2/alpha1 + Lc/4/alpha2 + 2 * Lc/8/alpha3
  let half = chunk_len / 2
  let quarter = chunk_len / 4
  let eighth = chunk_len / 8
  let per_chunk = half / alpha1 + quarter / alpha2 + 2 * (eighth / alpha3)
  let dh = d / heads

  // ---- the upper model (LLaMA)
  embed_tokens = Embedding(vocab, d)
  layers = repeat(n_layers) LlamaLayer(d, heads, ffn, rope_base, rms_eps)
  norm = RMSNorm(d, rms_eps)
  lm_head = Linear(d, vocab, has_bias = false) if !tie_embeddings
  // ---- self-injection modules of upper layers 1..M
  cross_attn = repeat(M) SelfInjection(d, heads, rope_base, rms_eps)
  // ---- the lower model: the first M layers of the upper model, same weights
  lower = repeat(M) LlamaLayer(d, heads, ffn, rope_base, rms_eps) shares layers

  fn logits(h) {
    let h = norm(h)
    return if tie_embeddings { h @ transpose(embed_tokens.weight) } else { lm_head(h) }
  }

  // ---------------------------------------------------------------- context compression

  /// Runs one tree node through the lower model and strides its per-layer KV.
  /// ids [R, l] (each row its own sequence, positions 0..l-1) -> (k, v) [M, R, H, l / alpha, dh].
  fn node_kv(ids, alpha: int) {
    let (r, l) = (dim(ids, 0), dim(ids, 1))
    let pos = arange(l)
    let ks = zeros([M, r, heads, l / alpha, dh])
    let vs = ks
    let h = embed_tokens(ids)
    for j in 0..M {
      let (h, k, v) = lower[j].attn_block(h, pos)
      let h = if j < M - 1 { lower[j].ffn_block(h) } else { h }      // the last FFN is not needed
      let ks = dynamic_update_slice(ks, k[:, :, ::alpha][None], j, axis = 0)
      let vs = dynamic_update_slice(vs, v[:, :, ::alpha][None], j, axis = 0)
    }
    return ks, vs
  }

  /// The query-aware probe: last-token state of a one-layer forward (layer 0, shared by both
  /// models). ids [R, l] -> [R, d].
  fn probe(ids) {
    let pos = arange(dim(ids, 1))
    return layers[0](embed_tokens(ids), pos)[:, -1]
  }

  /// Splits every row of `ids` [R, l] into the half to expand ("chosen") and the half to keep
  /// ("preserved"), both [R, l / 2].
  /// "Always right": static slices.
  fn split_right(ids) {
    let h2 = dim(ids, 1) / 2
    return ids[:, h2:], ids[:, :h2]
  }

  /// Query-aware: expand the half whose probe h_x is most cosine-similar to the query state
  /// h_y [R, d] (argmax over the halves, ties to the left); per row, the chosen half starts at
  /// choice * l/2, taken by a gather (a per-row dynamic slice).
  fn split_query(ids, h_y) {
    let (r, l) = (dim(ids, 0), dim(ids, 1))
    let h2 = l / 2
    let sims = stack([cosine_similarity(h_y, probe(ids[:, :h2])), cosine_similarity(h_y, probe(ids[:, h2:]))], axis = -1)
    let choice = argmax(sims, axis = -1)[:, None]                           // [R, 1]: 0 left, 1 right
    let ramp = iota([r, h2], 1)
    return gather(ids, choice * h2 + ramp, axis = 1), gather(ids, (1 - choice) * h2 + ramp, axis = 1)
  }

  fn split(ids, h_y) = if h_y == None { split_right(ids) } else { split_query(ids, h_y) }

  /// The context tree over every chunk and the compression. context [B, n, Lc]; h_y [B, d] or
  /// None ("always right"). Returns (k, v) [M, B, H, n * per_chunk, dh], keys rotated a second
  /// time with their chunk index (chunk-level RoPE), entries ordered chunk by chunk and, inside a
  /// chunk, level by level.
  fn compress(context, h_y) {
    let (b, n) = (dim(context, 0), dim(context, 1))
    let ids = reshape(context, [b * n, chunk_len])                       // chunks in parallel
    let h_y = if h_y == None { None } else { reshape(expand(h_y[:, None], [b, n, d]), [b * n, d]) }
    let (chosen1, kept1) = split(ids, h_y)                             // level 1: halves
    let (chosen2, kept2) = split(chosen1, h_y)                         // level 2: quarters
    let (k1, v1) = node_kv(kept1, alpha1)
    let (k2, v2) = node_kv(kept2, alpha2)
    let (k3, v3) = node_kv(chosen2[:, :eighth], alpha3)               // level 3: both eighths kept
    let (k4, v4) = node_kv(chosen2[:, eighth:], alpha3)
    let k = concat([k1, k2, k3, k4], axis = 3)                         // [M, b*n, H, per_chunk, dh]
    let v = concat([v1, v2, v3, v4], axis = 3)
    let k = reshape(permute(reshape(k, [M, b, n, heads, per_chunk, dh]), [0, 1, 3, 2, 4, 5]), [M, b, heads, n * per_chunk, dh])
    let v = reshape(permute(reshape(v, [M, b, n, heads, per_chunk, dh]), [0, 1, 3, 2, 4, 5]), [M, b, heads, n * per_chunk, dh])
    let chunk_of_entry = arange(n * per_chunk) / per_chunk
    let k = rope(k, chunk_of_entry, rope_base)
    return k, v
  }

  /// h_y of the query-aware policy: the one-layer probe of the running text [B, T] -> [B, d].
  fn query_state(tokens) = probe(tokens)

  fn compressed_context(context, tokens) {
    return if query_aware { compress(context, query_state(tokens)) } else { compress(context, None) }
  }

  // ---------------------------------------------------------------- the upper model

  /// Upper model over the running text. x [B, T] token ids; ctx_k, ctx_v [M, B, H, E, dh];
  /// n_chunks the chunk count (queries at chunk position n). Returns logits [B, T, vocab].
  fn upper(tokens, ctx_k, ctx_v, n_chunks) {
    let pos = arange(dim(tokens, 1))
    let h = embed_tokens(tokens)
    for j in 0..n_layers {
      let (h, _, _) = layers[j].attn_block(h, pos)
      let h = if j < M { cross_attn[j](h, ctx_k[j], ctx_v[j], n_chunks + query_chunk_offset) } else { h }
      let h = layers[j].ffn_block(h)
    }
    return logits(h)
  }

  /// One cached step of the upper model: tokens [B, n] at positions start..start+n-1.
  /// Returns (logits [B, n, vocab], k_cache, v_cache) with caches [n_layers, B, H, max_len, dh].
  fn upper_step(tokens, k_cache, v_cache, start, ctx_k, ctx_v, n_chunks) {
    let h = embed_tokens(tokens)
    for j in 0..n_layers {
      let (h, k_j, v_j) = layers[j].attn_step(h, k_cache[j], v_cache[j], start)
      let k_cache = dynamic_update_slice(k_cache, k_j[None], j, axis = 0)
      let v_cache = dynamic_update_slice(v_cache, v_j[None], j, axis = 0)
      let h = if j < M { cross_attn[j](h, ctx_k[j], ctx_v[j], n_chunks + query_chunk_offset) } else { h }
      let h = layers[j].ffn_block(h)
    }
    return logits(h), k_cache, v_cache
  }

  // ---------------------------------------------------------------- entries

  /// The compressed context with the "always right" policy (language modelling): static slices.
  /// context [B, n, Lc] -> k, v [M, B, H, n * per_chunk, dh].
  entry encode_context(context: i64[B, n, chunk_len]) {
    let (k, v) = compress(context, None)
    return k = k, v = v
  }

  /// The compressed context with the query-aware policy: at levels 1 and 2 the half whose
  /// one-layer probe is most cosine-similar to the query's is expanded (per chunk, a gather with
  /// offset choice * size). context [B, n, Lc]; query [B, T].
  entry encode_context_query_aware(context: i64[B, n, chunk_len], query: i64[B, T]) {
    let (k, v) = compress(context, query_state(query))
    return k = k, v = v
  }

  /// Logits of the running text X_D given the past context X_C (the training / perplexity pass).
  /// context [B, n, Lc]; tokens [B, T] -> logits [B, T, vocab].
  entry forward(context: i64[B, n, chunk_len], tokens: i64[B, T]) -> f32[B, T, vocab] {
    let (ck, cv) = compressed_context(context, tokens)
    return logits = upper(tokens, ck, cv, n)
  }

  /// The upper model alone, without context or self-injection: vanilla LLaMA.
  entry vanilla(tokens: i64[B, T]) -> f32[B, T, vocab] {
    let pos = arange(T)
    let h = embed_tokens(tokens)
    for j in 0..n_layers {
      let h = layers[j](h, pos)
    }
    return logits = logits(h)
  }

  /// Greedy decoding: compress the context once, prefill the upper model's KV cache
  /// [n_layers, B, H, T + max_new, dh] over the prompt, then generate `max_new` tokens one at a
  /// time, each step reusing the compressed context. context [B, n, Lc]; prompt [B, T].
  /// Returns tokens [B, max_new].
  entry generate(context: i64[B, n, chunk_len], prompt: i64[B, T]) {
    let (ck, cv) = compressed_context(context, prompt)
    let empty = zeros([n_layers, B, heads, T + max_new, dh])
    let (lg, k_cache, v_cache) = upper_step(prompt, empty, empty, 0, ck, cv, n)
    let first = argmax(lg[:, T - 1], axis = -1)                          // [B]
    loop i in 0..max_new carry (k_cache = k_cache, v_cache = v_cache, tok = first) {
      emit tokens = tok
      let (lg, kc, vc) = upper_step(tok[:, None], k_cache, v_cache, i + T, ck, cv, n)
      next k_cache = kc, v_cache = vc, tok = argmax(lg[:, 0], axis = -1)
    }
    return tokens = permute(tokens, [1, 0])
  }
}

// Statements: 16 zeroed accumulators of an 8 x 8 register tile, acc0a .. acc7b (two vec4s of
// row J: accJa and accJb).
var acc0a = vec4<f32>(0.0); var acc0b = vec4<f32>(0.0);
var acc1a = vec4<f32>(0.0); var acc1b = vec4<f32>(0.0);
var acc2a = vec4<f32>(0.0); var acc2b = vec4<f32>(0.0);
var acc3a = vec4<f32>(0.0); var acc3b = vec4<f32>(0.0);
var acc4a = vec4<f32>(0.0); var acc4b = vec4<f32>(0.0);
var acc5a = vec4<f32>(0.0); var acc5b = vec4<f32>(0.0);
var acc6a = vec4<f32>(0.0); var acc6b = vec4<f32>(0.0);
var acc7a = vec4<f32>(0.0); var acc7b = vec4<f32>(0.0);

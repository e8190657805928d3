// Statements: the register tile acc0a .. acc7b as one array, row J's two vec4s at 2J and 2J + 1.
var acc = array<vec4<f32>, 16>(acc0a, acc0b, acc1a, acc1b, acc2a, acc2b, acc3a, acc3b,
                               acc4a, acc4b, acc5a, acc5b, acc6a, acc6b, acc7a, acc7b);

// Statements: one step of a dense 8 x 8 register tile: rows x_lo (0..3) and x_hi (4..7) times the
// outputs w_a (0..3) and w_b (4..7), added into acc0a .. acc7b.
acc0a += x_lo.x * w_a; acc0b += x_lo.x * w_b;
acc1a += x_lo.y * w_a; acc1b += x_lo.y * w_b;
acc2a += x_lo.z * w_a; acc2b += x_lo.z * w_b;
acc3a += x_lo.w * w_a; acc3b += x_lo.w * w_b;
acc4a += x_hi.x * w_a; acc4b += x_hi.x * w_b;
acc5a += x_hi.y * w_a; acc5b += x_hi.y * w_b;
acc6a += x_hi.z * w_a; acc6b += x_hi.z * w_b;
acc7a += x_hi.w * w_a; acc7b += x_hi.w * w_b;

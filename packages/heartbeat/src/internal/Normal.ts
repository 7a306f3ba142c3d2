/**
 * The standard normal distribution's density and upper tail, for the
 * phi-accrual predictions. `upperTail` uses the Chebyshev fit of `erfc` from
 * Numerical Recipes (relative error below 1.2e-7 everywhere).
 *
 * @internal
 */
export const density = (z: number): number => Math.exp((-z * z) / 2) / Math.sqrt(2 * Math.PI)

const erfc = (x: number): number => {
  const t = 1 / (1 + 0.5 * Math.abs(x))
  const tail =
    t *
    Math.exp(
      -x * x -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    )
  return x >= 0 ? tail : 2 - tail
}

/** P(Z > z) for a standard normal Z. */
export const upperTail = (z: number): number => 0.5 * erfc(z / Math.SQRT2)

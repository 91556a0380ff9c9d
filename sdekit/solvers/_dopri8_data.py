r"""Coefficients of the Prince--Dormand 8(7) Runge--Kutta pair RK8(7)13M ("DOPRI8").

Source: P. J. Prince and J. R. Dormand, "High order embedded Runge-Kutta formulae", Journal of
Computational and Applied Mathematics 7(1) (1981) 67--75 (also listed in Hairer, Norsett and
Wanner, "Solving Ordinary Differential Equations I", Section II.6). This is the 13-stage method,
not the 8(5,3) method of the code DOP853.

The published coefficients are rational approximations (to about 18 significant digits) of the
method's real coefficients; they are stored here exactly as published. As a consequence the
row sums $\sum_j a_{ij}$ match $c_i$, and the order conditions hold, only to about 1e-17 (not
exactly). `e = b - b_hat` with `b_hat` the seventh-order weights. Not FSAL.

Dense output (derived for this library; `fsal_dense=True`): a continuous extension of order 5
that uses the 13 stages plus $k_{14} = f(t_1, y_1)$ and no other evaluation, with polynomials
$b_i(\theta)$ of degree 7. Order 5 is the most these 14 stages allow: the order-6 conditions
$\sum_i b_i(\theta) \Phi_i(\tau) = \theta^6/\gamma(\tau)$ ($\rho(\tau) = 6$) for all $\theta$ ask,
for the coefficient vectors of $\theta^2, \ldots, \theta^6$, for right-hand sides that are not in
the span of the $\Phi_i(\tau)$, $\rho(\tau) \le 6$ (least-squares residuals 2e-4 to 3e-3; a
higher order needs extra stages). Derivation, with $b_i(\theta) = \sum_{j=1}^7 P_{ij} \theta^j$:

* the order conditions up to order 5 for every power of $\theta$ separately, $b_i(1) = b_i$, and
  C1 continuity across steps: $b_i'(0) = \delta_{i1}$ (so $P_{i1} = \delta_{i1}$) and
  $b_i'(1) = \delta_{i,14}$. These force $b_2 = \ldots = b_5 = 0$ and leave 20 free parameters;
* which minimise $\int_0^1 \sum_{\rho(\tau) = 6} T_\tau(\theta)^2 d\theta
  + 10^{-6} \int_0^1 \sum_{\rho(\tau) = 7} T_\tau(\theta)^2 d\theta + 10^{-18} \|P\|^2$, with the
  local-error coefficients $T_\tau(\theta) = (\sum_i b_i(\theta) \Phi_i(\tau)
  - \theta^{\rho(\tau)}/\gamma(\tau)) / \sigma(\tau)$ (the last term only keeps the coefficients
  small, |P| < 120). Solved in 40-digit arithmetic (mpmath), least squares over the numerically
  consistent conditions (the published coefficients satisfy them only to ~1e-17).
  Result: the two integrals' square roots are 1.6e-6 (order 6) and 1.4e-5 (order 7), against
  5.1e-6 and 7.4e-3 for the degree-6 interpolant of diffrax's Dopri8 (Bogacki--Shampine style,
  also order 5 on the same 14 stages).

Stored: the coefficients of $\theta^2, \ldots, \theta^5$ (22 significant digits) for stages 1 and
6--14; those of $\theta^6, \theta^7$ follow exactly from $b_i(1) = b_i$ and $b_i'(1) = \delta_{i,14}$.
The order conditions up to 5 then hold to ~1e-17 (like the step itself).
"""

from fractions import Fraction


from ._tableau import ButcherTableau, fractions

_C = fractions(
    0,
    "1/18",
    "1/12",
    "1/8",
    "5/16",
    "3/8",
    "59/400",
    "93/200",
    "5490023248/9719169821",
    "13/20",
    "1201146811/1299019798",
    1,
    1,
)

_A = (
    fractions("1/18"),
    fractions("1/48", "1/16"),
    fractions("1/32", 0, "3/32"),
    fractions("5/16", 0, "-75/64", "75/64"),
    fractions("3/80", 0, 0, "3/16", "3/20"),
    fractions(
        "29443841/614563906",
        0,
        0,
        "77736538/692538347",
        "-28693883/1125000000",
        "23124283/1800000000",
    ),
    fractions(
        "16016141/946692911",
        0,
        0,
        "61564180/158732637",
        "22789713/633445777",
        "545815736/2771057229",
        "-180193667/1043307555",
    ),
    fractions(
        "39632708/573591083",
        0,
        0,
        "-433636366/683701615",
        "-421739975/2616292301",
        "100302831/723423059",
        "790204164/839813087",
        "800635310/3783071287",
    ),
    fractions(
        "246121993/1340847787",
        0,
        0,
        "-37695042795/15268766246",
        "-309121744/1061227803",
        "-12992083/490766935",
        "6005943493/2108947869",
        "393006217/1396673457",
        "123872331/1001029789",
    ),
    fractions(
        "-1028468189/846180014",
        0,
        0,
        "8478235783/508512852",
        "1311729495/1432422823",
        "-10304129995/1701304382",
        "-48777925059/3047939560",
        "15336726248/1032824649",
        "-45442868181/3398467696",
        "3065993473/597172653",
    ),
    fractions(
        "185892177/718116043",
        0,
        0,
        "-3185094517/667107341",
        "-477755414/1098053517",
        "-703635378/230739211",
        "5731566787/1027545527",
        "5232866602/850066563",
        "-4093664535/808688257",
        "3962137247/1805957418",
        "65686358/487910083",
    ),
    fractions(
        "403863854/491063109",
        0,
        0,
        "-5068492393/434740067",
        "-411421997/543043805",
        "652783627/914296604",
        "11173962825/925320556",
        "-13158990841/6184727034",
        "3936647629/1978049680",
        "-160528059/685178525",
        "248638103/1413531060",
        0,
    ),
)

# Eighth-order weights.
_B = fractions(
    "14005451/335480064",
    0,
    0,
    0,
    0,
    "-59238493/1068277825",
    "181606767/758867731",
    "561292985/797845732",
    "-1041891430/1371343529",
    "760417239/1151165299",
    "118820643/751138087",
    "-528747749/2220607170",
    "1/4",
)

# Seventh-order embedded weights.
_B_HAT = fractions(
    "13451932/455176623",
    0,
    0,
    0,
    0,
    "-808719846/976000145",
    "1757004468/5645159321",
    "656045339/265891186",
    "-3867574721/1518517206",
    "465885868/322736535",
    "53011238/667516719",
    "2/45",
    0,
)

# Dense output: coefficients of theta^2 .. theta^5 in b_i(theta), by stage (1-based; stage 14
# is f(t1, y1)). Stages 2-5 have b_i(theta) = 0.
_DENSE_THETA_2_TO_5 = {
    1: fractions("-6.642898025969996569484", "19.83549625345378107134", "-29.70945432185349037182", "21.71392437678621565807"),
    6: fractions("-6.837278387663328565062", "49.96714280788120179031", "-116.7347482445642619462", "110.5484177035827273209"),
    7: fractions("10.53173373352998550045", "-46.24658645266385505708", "81.79338676521307348881", "-65.47240793551047411763"),
    8: fractions("-0.1039541107447996471909", "1.216314021471645941604", "6.65133682067150983982", "-12.64334834004342414968"),
    9: fractions("3.688547635906882343102", "-33.23015611087426724665", "82.61810374059105367747", "-84.19377834862632743316"),
    10: fractions("-0.005567599750007334441585", "3.846008987375190637667", "-12.34629396446550013129", "16.77246454827042074992"),
    11: fractions("-1.45408784684677574915", "10.9234352840061919288", "-29.82921154633952100623", "33.68552484794487833723"),
    12: fractions("4.905404165458900289635", "-31.05477674443463664796", "73.52103719380230860516", "-73.65312256816989522342"),
    13: fractions("-6.472240153602833095618", "44.11267663874328195363", "-107.4586523521867108149", "109.1022956120429422724"),
    14: fractions("2.390340589681972827802", "-19.36955468495853437163", "51.49449590913153865929", "-55.85996989627706341457"),
}  # fmt: skip


def _dense_row(stage: int) -> tuple[Fraction, ...]:
    """Coefficients of theta^1 .. theta^7 in b_stage(theta)."""
    p1 = Fraction(1 if stage == 1 else 0)  # b_i'(0) = delta_i1
    middle = _DENSE_THETA_2_TO_5.get(stage, fractions(0, 0, 0, 0))
    b_end = _B[stage - 1] if stage <= len(_B) else Fraction(0)  # b_i(1) = b_i
    slope_end = Fraction(1 if stage == 14 else 0)  # b_i'(1) = delta_i,14
    rest = b_end - p1 - sum(middle)  # = p6 + p7
    rest_slope = slope_end - p1 - sum((j + 2) * p for j, p in enumerate(middle))  # = 6 p6 + 7 p7
    p7 = rest_slope - 6 * rest
    return (p1, *middle, rest - p7, p7)


DOPRI8_TABLEAU = ButcherTableau(
    c=_C,
    a=_A,
    b=_B,
    e=tuple(b - bh for b, bh in zip(_B, _B_HAT)),
    dense=tuple(_dense_row(stage) for stage in range(1, 15)),
    fsal_dense=True,
)

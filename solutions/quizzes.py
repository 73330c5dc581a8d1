"""The course's quiz questions with their answers: instructor material, the authoring source.

`rlcourse build-quizzes` turns this file into rlcourse/assets/quizzes.json, where answers are
salted hashes and explanations are sealed (see rlcourse/classroom/quizbank.py for the format); the
lecture notebooks show only `lecture_quiz("01")`, the homework `grading.quiz("hw1")`.
Run it after every change here; a test fails while the bank is stale.

Writing a question: ask what a student who only skimmed the notebook would get wrong; write
distractors about as long and as specific as the answer; the hint points to where to look,
it never names the answer. The order of options here does not matter: students see them
in a seeded shuffle.
"""

QUIZZES = {
    # ------------------------------------------------------------------ lecture notebooks
    "01": {"title": "Notebook 01", "questions": [
        {"id": "q1", "kind": "choice",
         "question": "In the toy REINFORCE experiment, a constant is added to every reward. What happens?",
         "options": [
             "The exact gradient is unchanged, but each sampled term grows, so the estimate gets noisier",
             "The exact gradient grows by the constant times E[∇ log π], so every update step gets larger and faster",
             "Nothing at all: the sampled estimate and the exact gradient both stay the same",
             "The sampled estimate becomes biased, while its variance stays the same",
         ],
         "answer": "The exact gradient is unchanged, but each sampled term grows, so the estimate gets noisier",
         "explanation": "Σ_y ∇π(y) = 0, so a constant adds nothing in expectation; on a sample it adds "
                        "c ∇log π(y), pure noise. That is why baselines (and advantages) exist.",
         "hint": "Read the paragraph above the exact-vs-sampled plot: what is Σ_y ∇π_θ(y)?"},
        {"id": "q2", "kind": "matching",
         "question": "Match each RL concept to its counterpart in a language model.",
         "pairs": {"state": "the prompt plus the tokens generated so far",
                   "action": "the next token",
                   "policy": "the model's next-token distribution",
                   "trajectory": "the whole generated response",
                   "reward": "a score of the finished response"},
         "explanation": "An LLM is a policy over tokens: states are prefixes, actions are tokens.",
         "hint": "The state must hold everything the model conditions on."},
        {"id": "q3", "kind": "choice",
         "question": "Raising the temperature above 1 at sampling time…",
         "options": [
             "flattens π: samples get more diverse and less often grammatical",
             "flattens π: samples get more diverse and more often grammatical",
             "changes θ, so the policy must be trained again for each temperature",
             "sharpens π towards the most likely token, so samples repeat more",
         ],
         "answer": "flattens π: samples get more diverse and less often grammatical",
         "explanation": "Temperature rescales logits at sampling time; θ is untouched. Diversity costs grammar.",
         "hint": "Look at the entropy and grammatical-share plot above."},
    ]},
    "02": {"title": "Reward modeling", "questions": [
        {"id": "q1", "kind": "choice",
         "question": "A reward model gives r_c = 2.0 to the chosen response and r_r = 2.0 to the rejected one. "
                     "What is its Bradley–Terry loss on this pair?",
         "options": ["0", "log 2 ≈ 0.693", "1", "it depends on the offset of the rewards"],
         "answer": "log 2 ≈ 0.693",
         "explanation": "−log σ(0) = log 2: the model cannot tell the two apart.",
         "hint": "Only the difference r_c − r_r enters the loss."},
        {"id": "q2", "kind": "choice",
         "question": "The annotators agree with the gold reward on about 85% of held-out pairs. "
                     "A reward model reaches 84% held-out accuracy. What does that tell you?",
         "options": ["It is badly underfit: a good model should reach close to 100%",
                     "It is close to the best possible under the label noise",
                     "It must have memorised the training pairs"],
         "answer": "It is close to the best possible under the label noise",
         "explanation": "Even the true reward only matches 85% of noisy labels: that is the ceiling.",
         "hint": "How would the gold reward itself score on the same labels?"},
        {"id": "q3", "kind": "choice",
         "question": "Why does the gold reward subtract 1 for ungrammatical text, on top of the sentiment term?",
         "options": ["To make the reward differentiable everywhere, which the policy gradient needs",
                     "So that word salad full of positive words cannot beat a fluent review",
                     "Because Bradley–Terry needs every reward to lie in [−1, 1]"],
         "answer": "So that word salad full of positive words cannot beat a fluent review",
         "explanation": "Sentiment alone rewards piling up praise, so an ungrammatical string of positive adjectives "
                        "would outscore every fluent review; with the penalty, word salad scores at most about 0, "
                        "below any fluent positive review (notebook 04's β = 0 run shows a policy finding such "
                        "strings when a learned reward lets it).",
         "hint": "Think about what an optimiser would write if only sentiment counted."},
    ]},
    "03": {"title": "Notebook 03", "questions": [
        {"id": "q1", "kind": "choice",
         "question": "A 500-token story is scored once, at the very end. Why does training on that score go badly?",
         "options": [
             "The score weights every token's gradient, so each term carries the noise of all 500 tokens; "
             "discounting cuts the noise but leaves the early tokens almost no credit",
             "The policy gradient becomes biased when the reward arrives only at the end, and the bias grows "
             "with the length, so neither more samples nor a baseline can repair the estimate",
             "The KL penalty accumulates over 500 tokens and cancels the reward, so the net signal is zero",
             "The model cannot compute log-probabilities for 500 tokens in one forward pass",
         ],
         "answer": "The score weights every token's gradient, so each term carries the noise of all 500 tokens; "
                   "discounting cuts the noise but leaves the early tokens almost no credit",
         "explanation": "The estimate stays unbiased, but its noise per unit of signal grows in proportion to the "
                        "length (measured above, for a sum and for a pass/fail verdict at the end); γ < 1 cuts the "
                        "noise, but a reward at the end then hardly reaches the start (γ^499 ≈ 0) and biases the gradient.",
         "hint": "Look at the variance plot and the G_0 column of the discounting table."},
        {"id": "q2", "kind": "choice",
         "question": "What does GAE with λ = 0 use as the advantage of token t?",
         "options": ["the one-step TD residual r_t + γV(s_{t+1}) − V(s_t)",
                     "the Monte-Carlo return G_t minus the value V(s_t)",
                     "the final score of the sequence, the same for every token",
                     "the score normalised over a group of samples of the same prompt"],
         "answer": "the one-step TD residual r_t + γV(s_{t+1}) − V(s_t)",
         "explanation": "λ = 0 keeps only δ_t; λ = 1 sums all of them to G_t − V(s_t).",
         "hint": "Set λ = 0 in A_t = Σ (γλ)^(k−t) δ_k."},
        {"id": "q3", "kind": "choice",
         "question": "In this notebook's story experiment the dense rewards beat the sparse score at γ = 0.9 but "
                     "only tied it at γ = 1. Why?",
         "options": [
             "At γ = 1 the dense reward-to-go is the end score minus a function of the earlier tokens, so both "
             "estimate the same gradient; at γ = 0.9 the end score barely reaches the early tokens, a dense "
             "reward counts in full at its own token",
             "The dense rewards add up to more than the sparse score, and at γ = 1 the undiscounted sparse "
             "return grows just as large, so the two totals and their gradients become equal",
             "At γ = 1 the per-token KL penalty outweighs both rewards, so neither design can move the policy "
             "faster than the other, while at γ = 0.9 it is discounted away",
             "At γ = 1 the shaping term stops telescoping, which biases the dense gradient and cancels the "
             "lower variance that made the dense rewards win at γ = 0.9",
         ],
         "answer": "At γ = 1 the dense reward-to-go is the end score minus a function of the earlier tokens, so both "
                   "estimate the same gradient; at γ = 0.9 the end score barely reaches the early tokens, a dense "
                   "reward counts in full at its own token",
         "explanation": "Σ_{k≥t} r_k = R − Σ_{k<t} r_k: at γ = 1 the dense return is the sparse one minus what the "
                        "prompt and the earlier tokens were already paid (Φ(x, y_<t)), a baseline, so the expected "
                        "gradient is the same and only its noise differs. Potential-based shaping (Ng et al. 1999) keeps the optimal policy for "
                        "F = γΦ(s′) − Φ(s); the dense rewards add F = Φ(s′) − Φ(s), that form only at γ = 1. At "
                        "γ = 0.9 the arms optimise different discounted surrogates, and the sparse one passes "
                        "0.9^47 ≈ 0.7% of the score to the first token, while each dense reward reaches its own "
                        "token undiscounted.",
         "hint": "Write the dense reward-to-go at γ = 1 as a telescoping sum, and look at the G_0 column of the "
                 "discounting table."},
        {"id": "q4", "kind": "ordering",
         "question": "Order these REINFORCE weightings of token t from the highest gradient variance to the lowest, "
                     "for long sequences.",
         "items": ["the whole score R = Σ_t r_t, given at the end", "the reward-to-go G_t with γ = 1",
                   "the reward-to-go G_t with γ = 0.9"],
         "explanation": "Measured above: variance ∝ T², about half of that with γ = 1, about linear in T with γ = 0.9.",
         "hint": "Read the variance table."},
    ]},
    "04": {"title": "Notebook 04", "questions": [
        {"id": "q1", "kind": "ordering",
         "question": "Put the steps of one RLHF iteration in order.",
         "items": ["sample responses from the current policy", "score each response with the reward model",
                   "add the per-token KL penalty to the reward", "estimate advantages (GAE with the value head)",
                   "take clipped gradient steps on θ for a few epochs"],
         "explanation": "Rollout → score → KL-penalised rewards → advantages → update.",
         "hint": "You cannot score what has not been sampled, nor compute advantages without rewards."},
        {"id": "q2", "kind": "choice",
         "question": "Why does PPO clip the probability ratio?",
         "options": ["To stop several gradient steps on one batch from moving the policy far from the one that sampled it",
                     "To keep the rewards between −1 and 1 so that advantages stay comparable across batches and response lengths",
                     "To make the value head converge faster by bounding its regression targets"],
         "answer": "To stop several gradient steps on one batch from moving the policy far from the one that sampled it",
         "explanation": "The clipped objective is flat only on the side the advantage pushes (Schulman et al. 2017, "
                        "Fig. 1): above 1 + ε when A > 0, below 1 − ε when A < 0. There a token's gradient is 0; a move "
                        "that makes the objective worse is never clipped.",
         "hint": "Look at the plot of the clipped surrogate."},
        {"id": "q3", "kind": "choice",
         "question": "A single k1 KL term log π(a) − log π_ref(a) is negative. What does that mean?",
         "options": ["Nothing is wrong: k1 is unbiased, but one sampled term can be negative",
                     "The policy has diverged from the reference, and training should stop",
                     "The reference model is being trained by mistake, since its log-prob rose"],
         "answer": "Nothing is wrong: k1 is unbiased, but one sampled term can be negative",
         "explanation": "KL ≥ 0 holds for the expectation; k3 is non-negative term by term.",
         "hint": "KL is an expectation over sampled tokens."},
        {"id": "q4", "kind": "choice",
         "question": "Trained against the learned reward model with β = 0, the proxy score keeps rising while the gold "
                     "reward falls. What happened?",
         "options": ["The policy found text the reward model over-scores, and no KL term held it near the data",
                     "The reward model was trained on too little data, so the policy could not learn anything useful from it",
                     "The learning rate was too low for the proxy reward to transfer to the gold reward"],
         "answer": "The policy found text the reward model over-scores, and no KL term held it near the data",
         "explanation": "A proxy is only trustworthy near the data it was fitted on; the KL penalty keeps the policy there.",
         "hint": "Compare the samples of the two runs, and their KL."},
    ]},
    "05": {"title": "Notebook 05", "questions": [
        {"id": "q1", "kind": "choice",
         "question": "The policy's reward-model score keeps rising while its gold reward stops rising or falls. This is…",
         "options": ["reward over-optimisation (Goodhart): the policy exploits where r_φ is wrong",
                     "a sign that the learning rate is too small to improve the gold reward",
                     "proof that the gold reward is noisy, and that the proxy should replace it from now on",
                     "the KL penalty working as intended: it lowers the gold reward to stay close"],
         "answer": "reward over-optimisation (Goodhart): the policy exploits where r_φ is wrong",
         "explanation": "r_φ is only a fitted proxy; far from the data it was fitted on, its errors become what "
                        "the policy optimises.",
         "hint": "Which reward does the policy see during training?"},
        {"id": "q2", "kind": "choice",
         "question": "Why compare KL per position rather than only the total KL?",
         "options": ["It shows where in the response the policy departs from the reference",
                     "The total KL cannot be computed from per-token log-probabilities",
                     "Per-position KL is always larger than the total, so it is easier to read",
                     "It removes the need for a reference model at evaluation time"],
         "answer": "It shows where in the response the policy departs from the reference",
         "explanation": "The total is a sum over positions; splitting it shows which decisions RL changed.",
         "hint": "What does the bar chart's x-axis show?"},
        {"id": "q3", "kind": "choice",
         "question": "The relative change ‖θ − θ_ref‖/‖θ_ref‖ of a group of tensors is computed by pooling squared "
                     "norms. Why not average the ratios of its tensors?",
         "options": ["Pooling weighs each tensor by its squared norm; averaging ratios lets a tiny tensor dominate",
                     "Averaging ratios is slower, since each tensor's norm must be computed twice",
                     "The ratios of all tensors in one group are always equal, so averaging them adds nothing new",
                     "Pooling leaves out the biases, which would otherwise dominate the average"],
         "answer": "Pooling weighs each tensor by its squared norm; averaging ratios lets a tiny tensor dominate",
         "explanation": "Pooled, √(Σ‖Δθ_i‖² / Σ‖θ_i‖²) is the root of the tensors' squared ratios averaged with "
                        "weights ‖θ_i‖² / Σ‖θ_j‖²: a small bias moving 10 % next to a weight matrix of 100 times its "
                        "squared norm moving 1 % pools to about 1.4 %, not the 5.5 % a plain average gives.",
         "hint": "Think of a small bias vector next to a large weight matrix."},
    ]},
    "06": {"title": "Notebook 06", "questions": [
        {"id": "q1", "kind": "choice",
         "question": "Best-of-16 sampling from π changes the output distribution by at most how much KL?",
         "options": ["log 16 − 15/16 ≈ 1.84 nats", "log 16 ≈ 2.77 nats", "0: no parameter changes", "16 nats"],
         "answer": "log 16 − 15/16 ≈ 1.84 nats",
         "explanation": "KL(π_BoN‖π) ≤ log N − (N−1)/N; it moves the distribution without moving θ.",
         "hint": "Use the formula in the best-of-N section."},
        {"id": "q2", "kind": "choice",
         "question": "Why does DPO need no separate reward model?",
         "options": ["At the KL-regularised optimum r = β log(π/π_ref) + β log Z(x), and Z cancels in a pair",
                     "It uses the gold reward directly, which the course can compute exactly for any response it sees",
                     "It samples from the policy and scores each sample with its own log-probability",
                     "It assumes every chosen response has reward 1 and every rejected one reward 0"],
         "answer": "At the KL-regularised optimum r = β log(π/π_ref) + β log Z(x), and Z cancels in a pair",
         "explanation": "The policy itself parametrises the reward; Bradley–Terry only needs differences.",
         "hint": "What happens to log Z(x) when two responses share the prompt x?"},
        {"id": "q3", "kind": "choice",
         "question": "During this notebook's DPO run, what happened to the implicit reward β log(π_θ/π_ref) "
                     "of the chosen responses?",
         "options": ["It rose, while the rejected responses' implicit reward fell",
                     "It fell: the margin grew because the rejected responses fell further",
                     "It stayed at 0, because the loss only moves the rejected responses",
                     "It rose faster than the rejected responses' fell, as the loss requires"],
         "answer": "It fell: the margin grew because the rejected responses fell further",
         "explanation": "DPO only needs the margin to grow; here it mostly pushed the rejected responses down, "
                        "dragging the chosen ones down too, a well-known trait of the method.",
         "hint": "Read the paragraph after the DPO training cell, not the loss formula."},
    ]},
    "07": {"title": "Notebook 07", "questions": [
        {"id": "q1", "kind": "choice",
         "question": "In this notebook's GRPO runs on the arithmetic task, what happened to pass@16 on held-out problems?",
         "options": ["It did not rise, in either run: RL made the model surer of answers it could already reach",
                     "It rose with pass@1, since a better policy is better at every k",
                     "It rose only with the process reward, which teaches new answers",
                     "It cannot be measured: pass@16 needs exactly 16 samples and the estimator needs more"],
         "answer": "It did not rise, in either run: RL made the model surer of answers it could already reach",
         "explanation": "Both runs end with pass@16 at or below the pretrained model's (checked), the sharpening Yue et al. 2025 "
                        "report; the process run still raised pass@1.",
         "hint": "Compare the pass@16 columns of the tables in sections 2 and 3 with the pretrained row."},
        {"id": "q2", "kind": "choice",
         "question": "With GRPO's process supervision, which tokens of a response carry the (normalised) reward of its step j?",
         "options": ["every token up to and including step j's last token",
                     "every token of the response, like the outcome reward",
                     "only the tokens after step j",
                     "only step j's last token"],
         "answer": "every token up to and including step j's last token",
         "explanation": "A_t sums the normalised rewards of the steps that end at or after t: tokens before a wrong step "
                        "share its blame, tokens after it do not.",
         "hint": "Read the formula for A_{i,t}: which steps does the sum run over?"},
        {"id": "q3", "kind": "choice",
         "question": "Under the original GRPO's per-response mean, how hard is each token of a wrong response pushed down "
                     "as the response gets longer?",
         "options": ["Less hard: each token weighs 1/(B·L), so long wrong responses are penalised gently",
                     "Equally hard: every token of the batch has the same weight",
                     "Harder: a longer response has more tokens, so each is pushed more",
                     "Not at all: wrong responses get no gradient under GRPO"],
         "answer": "Less hard: each token weighs 1/(B·L), so long wrong responses are penalised gently",
         "explanation": "That is the length bias Dr. GRPO (constant normaliser) and DAPO (token mean) remove.",
         "hint": "Look at the per-token weight column for the 40-token wrong responses."},
        {"id": "q4", "kind": "choice",
         "question": "Rewards are 0/1 and G = 8. With GRPO's division by the group std, which group gives its right "
                     "answers the largest advantage?",
         "options": ["a group with one right answer in eight", "a group with four right answers in eight",
                     "a group with seven right answers in eight", "all groups equally: the advantages are normalised"],
         "answer": "a group with one right answer in eight",
         "explanation": "(1 − 1/8)/std ≈ 2.47 against 0.94 for four in eight: the division makes rare successes loud; "
                        "Dr. GRPO drops it.",
         "hint": "Use the std-division table in section 4."},
    ]},
    "08": {"title": "Notebook 08", "questions": [
        {"id": "q1", "kind": "ordering",
         "question": "Put the stages of the whole pipeline in order (notebook 04 ordered the steps inside the last one).",
         "items": ["pretrain a language model on plain text", "supervised fine-tuning on written demonstrations",
                   "sample responses from the SFT policy and have people compare them",
                   "fit a reward model to the comparisons (Bradley–Terry)",
                   "RL against the reward model, with a KL penalty to the SFT model"],
         "explanation": "InstructGPT's order (Ouyang et al. 2022): each stage consumes what the one before made — the SFT "
                        "policy writes the responses that are compared, the comparisons train r_φ, and RL optimises against "
                        "r_φ starting from, and held near, the SFT policy.",
         "hint": "Each stage needs something the stage before produced: what does the reward model learn from, and whose "
                 "responses are those?"},
        {"id": "q2", "kind": "choice",
         "question": "Why is the KL penalty of the RL stage taken to the SFT model, not to the pretrained one?",
         "options": ["The SFT policy wrote the responses r_φ was fitted on, so near it r_φ is trustworthy; and RL should keep "
                     "what SFT taught, not be pulled back to the base model's habits",
                     "Because the pretrained model's log-probs cannot be computed any more once SFT has changed the weights",
                     "To make the KL smaller at the start, so that the penalty never costs any reward during training",
                     "Because PPO needs the reference to be the model that was trained with the same loss as the policy"],
         "answer": "The SFT policy wrote the responses r_φ was fitted on, so near it r_φ is trustworthy; and RL should keep "
                   "what SFT taught, not be pulled back to the base model's habits",
         "explanation": "The penalty keeps π near the samples r_φ was fitted and tested on, and near what the demonstrations "
                        "taught; a leash to the base model would pull the policy back towards what SFT removed (InstructGPT, "
                        "Ouyang et al. 2022, §3.5).",
         "hint": "Whose samples was r_φ fitted on? And what would a KL to the base model reward?"},
        {"id": "q3", "kind": "choice",
         "question": "The SFT loss here is computed on response tokens only. What does the model therefore not learn?",
         "options": ["To write the prompts: no gradient asks it to predict a prompt token, so the demonstrations' openings "
                     "are not imitated",
                     "To read the prompts: masked tokens are hidden from attention, so responses ignore the prompt",
                     "When to stop: the EOS token is masked together with the prompt",
                     "Anything about the first response token, which the mask also removes"],
         "answer": "To write the prompts: no gradient asks it to predict a prompt token, so the demonstrations' openings "
                   "are not imitated",
         "explanation": "The mask removes prompt tokens from the loss, not from the input: the model still conditions on them "
                        "(attention sees every token) and still learns the EOS. The all-token run raised log π(prompt) by "
                        "more than a quarter of a nat per token; the response-only run did not.",
         "hint": "A mask on the loss is not a mask on attention. Compare the two runs' log π(prompt) column."},
    ]},
    # ------------------------------------------------------------------ homework (keys "q1", "q2", …)
    "hw1": {"title": "hw1 quiz", "questions": [
        {"id": "q1", "kind": "choice", "question": "In the LLM-as-policy view, what is an action?",
         "options": ["the whole response", "one next token", "the prompt", "a gradient step"],
         "answer": "one next token",
         "explanation": "The policy picks one token per step; a response is a trajectory of actions.",
         "hint": "The policy picks one thing at every step of generation."},
        {"id": "q2", "kind": "choice", "question": "What does a temperature below 1 do to the sampling distribution?",
         "options": ["flattens it, so rarer tokens are sampled more often", "sharpens it towards the most likely tokens",
                     "leaves it unchanged; only top-k changes the distribution"],
         "answer": "sharpens it towards the most likely tokens",
         "explanation": "softmax(z/τ) with τ < 1 stretches the logit differences.",
         "hint": "Dividing logits by τ < 1 stretches their differences."},
        {"id": "q3", "kind": "choice", "question": "Why sum token log-probs only where the response mask is 1?",
         "options": ["the prompt and padding are not actions of the policy",
                     "to make the sum smaller, so that long prompts do not dominate the loss",
                     "because the model cannot compute log-probs for prompt tokens at all"],
         "answer": "the prompt and padding are not actions of the policy",
         "explanation": "log π(response | prompt) scores only what the policy chose.",
         "hint": "log π(response | prompt) scores the response given the prompt."},
    ]},
    "hw2": {"title": "hw2 quiz", "questions": [
        {"id": "q1", "kind": "choice",
         "question": "Adding 5 to every reward of a Bradley–Terry reward model changes the loss by",
         "options": ["+5", "nothing", "a factor e^5"], "answer": "nothing",
         "explanation": "σ(r_c − r_r) sees only the difference, which the offset leaves alone.",
         "hint": "The model only sees differences r_c − r_r."},
        {"id": "q2", "kind": "choice",
         "question": "Why can a reward model's held-out accuracy stay below 100% even when it is perfect?",
         "options": ["the annotators' labels are noisy", "the sigmoid saturates for large reward gaps",
                     "the held-out batch is too small to measure accuracy"],
         "answer": "the annotators' labels are noisy",
         "explanation": "A perfect model agrees with the gold reward, and the labels disagree with it now and then.",
         "hint": "Think of the simulated annotators' β."},
        {"id": "q3", "kind": "choice", "question": "log(sigmoid(x)) computed naively for x = −300 gives",
         "options": ["−300", "−inf", "0"], "answer": "−inf",
         "explanation": "sigmoid(−300) is 0 in float32 and log 0 = −inf; logsigmoid gives −300.",
         "hint": "sigmoid(−300) underflows in float32."},
    ]},
    "hw3": {"title": "hw3 quiz", "questions": [
        {"id": "q1", "kind": "choice",
         "question": "With γ = 1 and one reward at the end, the return of every response token is",
         "options": ["the final score (plus the KL terms after it)", "zero, except the last token's, which is the score",
                     "the score divided by T, spread evenly over the tokens"],
         "answer": "the final score (plus the KL terms after it)",
         "explanation": "G_t sums every reward from t to the end, and the score is at the end.",
         "hint": "G_t sums the rewards from t to the end."},
        {"id": "q2", "kind": "choice", "question": "GAE with λ = 0 gives",
         "options": ["the Monte-Carlo return minus V", "the one-step TD residual δ_t", "the raw reward"],
         "answer": "the one-step TD residual δ_t",
         "explanation": "A_t = δ_t + γλ A_{t+1} with λ = 0 is δ_t.",
         "hint": "Set λ = 0 in A_t = δ_t + γλ A_{t+1}."},
        {"id": "q3", "kind": "matching", "question": "Match each estimator to its property.",
         "pairs": {"Monte-Carlo return": "unbiased, high variance", "TD residual": "biased by the critic, low variance"},
         "explanation": "The TD residual trusts V(s_{t+1}): less noise, but V's errors become bias.",
         "hint": "Which one trusts the critic?"},
    ]},
    "hw4": {"title": "hw4 quiz", "questions": [
        {"id": "q1", "kind": "ordering", "question": "Put the steps of one RLHF iteration with PPO in order.",
         "items": ["sample responses from the policy", "score them with the reward model",
                   "add the KL penalty and compute advantages with GAE", "update θ with the clipped surrogate"],
         "explanation": "Rollout, score, KL-penalised advantages, clipped update.",
         "hint": "You cannot score what you have not sampled."},
        {"id": "q2", "kind": "choice",
         "question": "For a token with A > 0 and ratio ρ = 1.5 (ε = 0.2), the clipped loss's gradient is",
         "options": ["zero", "larger than unclipped", "negative"], "answer": "zero",
         "explanation": "min(ρA, clip(ρ, 1−ε, 1+ε)A) = 1.2·A, a constant in θ.",
         "hint": "min(ρA, clip(ρ)A) picks the constant once ρ > 1 + ε."},
        {"id": "q3", "kind": "choice",
         "question": "Per sampled token a ~ π, with r = π_ref(a)/π(a), the estimators of KL(π‖π_ref) are "
                     "k1 = −log r and k3 = (r − 1) − log r. Which statement is true?",
         "options": ["Both have the KL as their mean; one k1 term can be negative, one k3 term cannot",
                     "k3 is never negative but biased: its mean is larger than the KL",
                     "k1 is never negative, because a KL divergence is never negative",
                     "Both can be negative for a single token; only their averages over many tokens are sure to be ≥ 0"],
         "answer": "Both have the KL as their mean; one k1 term can be negative, one k3 term cannot",
         "explanation": "E_π[r − 1] = Σ π_ref − 1 = 0, so k3 has k1's mean; and log r ≤ r − 1 makes each k3 ≥ 0.",
         "hint": "Compute E_π[r] first; then recall log r ≤ r − 1."},
    ]},
    "hw5": {"title": "hw5 quiz", "questions": [
        {"id": "q1", "kind": "choice",
         "question": "A problem got c = 2 correct answers in n = 10 samples. Why estimate pass@5 with "
                     "1 − C(n−c, 5)/C(n, 5) rather than 1 − (1 − c/n)^5?",
         "options": [
             "The power form is biased low: 1 − (1 − p)^k is concave in p, so plugging in the noisy c/n "
             "underestimates pass@k on average",
             "The power form is biased high: with few correct samples (1 − c/n)^k shrinks too fast, so it "
             "overestimates pass@k on average",
             "Both are unbiased, but the binomial form has the lower variance because it uses all k-subsets",
             "Both give the same number; the binomial form only exists so that large n does not overflow a float",
         ],
         "answer": "The power form is biased low: 1 − (1 − p)^k is concave in p, so plugging in the noisy c/n "
                   "underestimates pass@k on average",
         "explanation": "1 − C(n−c, k)/C(n, k) is the exact chance that k of the n samples, drawn without "
                        "replacement, hold a correct one: its mean over draws is pass@k. For a concave f, "
                        "E[f(p̂)] ≤ f(E p̂) (Jensen), so 1 − (1 − p̂)^k falls short; here 0.778 vs 0.672.",
         "hint": "Is p ↦ 1 − (1 − p)^k linear? What does that do to the mean of f(p̂) when p̂ is noisy?"},
        {"id": "q2", "kind": "choice",
         "question": "GRPO with 0/1 rewards and G = 8 samples per prompt, advantages (r − mean)/(std + 1e-4). "
                     "Which statement is true?",
         "options": [
             "Groups solved 0/8 or 8/8 give advantage 0; the right answer in a 1/8 group gets a larger one than "
             "a right answer in a 4/8 group",
             "A group solved 8/8 has std 0, so its samples get advantages near 1/1e-4 and dominate the update",
             "Dividing by the std gives right answers the same advantage in every group, so easy and hard prompts "
             "weigh alike",
             "Every group of 0/1 rewards has the same std, so dividing by it only rescales the learning rate",
         ],
         "answer": "Groups solved 0/8 or 8/8 give advantage 0; the right answer in a 1/8 group gets a larger one than "
                   "a right answer in a 4/8 group",
         "explanation": "An all-equal group has r − mean = 0, so 0/(0 + 1e-4) = 0: no signal. With one right "
                        "answer of 8, (1 − 1/8)/0.354 = 2.47; with four, 0.5/0.535 = 0.94. Dividing by the std "
                        "amplifies groups that are nearly all alike (Dr. GRPO: a question-difficulty bias).",
         "hint": "Compute the mean and the unbiased std of [1, 0, 0, 0, 0, 0, 0, 0] and of [1, 1, 1, 1, 0, 0, 0, 0]."},
        {"id": "q3", "kind": "choice",
         "question": "Two wrong responses to one prompt get the same advantage A < 0; one has 10 tokens, the other "
                     "100. With the original GRPO loss (each response's mean over its own tokens, then the mean "
                     "over responses), how hard is each token pushed down?",
         "options": [
             "A token of the long response is pushed a tenth as hard as a token of the short one, so long wrong "
             "answers cost less per token and responses drift longer",
             "Every token is pushed equally hard, since both responses have the same advantage",
             "A token of the long response is pushed ten times as hard, since the long response has more tokens "
             "to blame",
             "The long response is pushed ten times as hard in total, so the policy learns to answer briefly",
         ],
         "answer": "A token of the long response is pushed a tenth as hard as a token of the short one, so long wrong "
                   "answers cost less per token and responses drift longer",
         "explanation": "Each response weighs 1/|o_i| per token: the totals are equal, so per token the long one "
                        "gets a tenth. DAPO's token mean or Dr. GRPO's constant divisor weighs every token alike.",
         "hint": "Write the per-token weight of the loss 1/|o_i| Σ_t ℓ_t for |o_i| = 10 and |o_i| = 100."},
        {"id": "q4", "kind": "choice",
         "question": "Prompt: 4 + 3 - 2 =   Response: 4 + 3 = 8 ; 8 - 2 = 5 ; answer 5. What do the outcome "
                     "reward and a step-by-step check say?",
         "options": [
             "Outcome reward 1 (the answer is right), while both compute steps are wrong: their errors cancel",
             "Outcome reward 1, and only the first step is wrong: the second carries its value on correctly",
             "Outcome reward 0: an answer reached through wrong steps does not count as correct",
             "Both rewards are fully positive: 8 − 2 = 5 is off by one, but it lands on the problem's true value",
         ],
         "answer": "Outcome reward 1 (the answer is right), while both compute steps are wrong: their errors cancel",
         "explanation": "The outcome reward only reads 'answer 5'. 4 + 3 = 8 is wrong, and 8 − 2 = 6, not 5, so "
                        "the second step is wrong as well; a process reward marks both.",
         "hint": "Check each step's arithmetic on its own, given what the response wrote before it."},
    ]},
    "hw6": {"title": "hw6 quiz", "questions": [
        {"id": "q1", "kind": "choice",
         "question": "A left-padded row reads <pad> <pad> <bos> the plot was dull . <eos> (positions 0 to 8), and its "
                     "prompt length is 4. Which positions does the response-only loss mask mark?",
         "options": [
             "6, 7 and 8: dull, . and <eos>",
             "4, 5, 6, 7 and 8: the prompt length counted from column 0, as if there were no padding",
             "6 and 7: dull and ., since the <eos> is added by the tokenizer and is not part of the response",
             "5, 6, 7 and 8: was, dull, . and <eos>, since the prompt length does not count the <bos>",
         ],
         "answer": "6, 7 and 8: dull, . and <eos>",
         "explanation": "The row's real tokens start after its 2 pads; the first 4 of them (<bos> the plot was) are "
                        "the prompt; everything after, the <eos> included, is imitated.",
         "hint": "Find where the row's real tokens start, then skip the prompt's tokens, <bos> included."},
        {"id": "q2", "kind": "choice",
         "question": "A mask built as 'every response word' leaves out the <eos> after each demonstration. What "
                     "does the fine-tuned model then do?",
         "options": [
             "It keeps its old habits of stopping, since no step raises the probability of <eos> after a "
             "finished response",
             "Nothing changes: <eos> is always the last token, and the shift drops the last position of every row, "
             "so it was never imitated anyway",
             "It stops right after the prompt, because <eos> is now imitated on the prompt side instead",
             "The loss becomes NaN for responses of a single word, since their rows have nothing left to imitate",
         ],
         "answer": "It keeps its old habits of stopping, since no step raises the probability of <eos> after a "
                   "finished response",
         "explanation": "When to stop is a token like any other: the demonstrations teach it only if <eos> is "
                        "imitated. The shift drops the last position's logits, not the last token: <eos> is "
                        "predicted by the logits just before it.",
         "hint": "Which logits predict the <eos>, and is that position dropped by the shift?"},
        {"id": "q3", "kind": "choice",
         "question": "A batch of two demonstrations: A imitates 2 tokens at 2.0 nats each, B imitates 8 tokens at "
                     "0.5 nats each. What does the SFT loss (one token mean, Hugging Face's labels = −100 "
                     "convention) return?",
         "options": ["0.8 nats", "1.25 nats", "1.6 nats", "0.5 nats"],
         "answer": "0.8 nats",
         "explanation": "(2 × 2.0 + 8 × 0.5) / 10 = 0.8. A mean per demonstration, then over the two, gives "
                        "(2.0 + 0.5) / 2 = 1.25: each token of the short demonstration would weigh four times as much.",
         "hint": "Add up the nats of every imitated token, then divide by how many tokens there are."},
    ]},
}

# Reference numbers for mixtures with a uniform noise component, made with R's mclust 6.0.0 and prabclus
# (Debian r-cran-mclust, r-cran-prabclus):   cd benchmarks/noise && Rscript mclust_noise.R
# Writes
#   chevron.csv          mclust's chevron data (class "data" or "noise", x, y)
#   outliers.csv         Old Faithful with 40 planted outliers (uniform over a box 1.5 times the data's range,
#                        set.seed(1)); class "data" or "noise"
#   start.csv            the first guess of the noise (NNclean(X, k = 5), as mclust's examples make it) and
#                        Mclust's hierarchical start on the other rows for G = 1..5: data, row, noise, G1..G5
#   mclust_noise.csv     Mclust(X, G, model, initialization = list(noise = guess)) for VVV, EEE, VVI, VII and
#                        G = 1..5, EM run to a relative change of 1e-10: log-likelihood, df, BIC (mclust's sign),
#                        noise proportion, 1 / V, and the precision and recall of the rows it calls noise
#   mclust_noise_selection.csv  Mclust(X, initialization = list(noise = guess)) with its other defaults
suppressMessages({library(mclust); library(prabclus)})
data(chevron)
set.seed(1)
X <- as.matrix(faithful)
low <- apply(X, 2, min) - 0.25 * apply(X, 2, function(x) diff(range(x)))
high <- apply(X, 2, max) + 0.25 * apply(X, 2, function(x) diff(range(x)))
planted <- cbind(runif(40, low[1], high[1]), runif(40, low[2], high[2]))
outliers <- data.frame(class = rep(c("data", "noise"), c(nrow(X), 40)), eruptions = c(X[, 1], planted[, 1]),
                       waiting = c(X[, 2], planted[, 2]))
write.csv(chevron, "chevron.csv", row.names = FALSE)
write.csv(outliers, "outliers.csv", row.names = FALSE)
sets <- list(chevron = chevron, outliers = outliers)
control <- emControl(tol = c(1e-10, sqrt(.Machine$double.eps)))
starts <- NULL
results <- NULL
selection <- NULL
for (name in names(sets)) {
  X <- as.matrix(sets[[name]][, 2:3])
  truth <- sets[[name]]$class == "noise"
  guess <- NNclean(X, k = 5)$z == 0
  hcp <- hc(X[!guess, ], modelName = mclust.options("hcModelName"), use = mclust.options("hcUse"))
  start <- data.frame(data = name, row = seq_len(nrow(X)), noise = guess)
  for (G in 1:5) {
    labels <- rep(0, nrow(X))
    labels[!guess] <- if (G == 1) 1 else as.vector(hclass(hcp, G))
    start[[paste0("G", G)]] <- labels
  }
  starts <- rbind(starts, start)
  for (model in c("VVV", "EEE", "VVI", "VII")) for (G in 1:5) {
    fit <- tryCatch(Mclust(X, G = G, modelNames = model, initialization = list(noise = guess), control = control,
                           verbose = FALSE), error = function(e) NULL)
    if (is.null(fit)) { message(name, " ", model, " ", G, " failed"); next }
    called <- fit$classification == 0
    results <- rbind(results, data.frame(data = name, model = model, G = G, loglik = fit$loglik, df = fit$df,
                                         bic = fit$bic, noise = fit$parameters$pro[G + 1],
                                         Vinv = fit$parameters$Vinv, precision = sum(called & truth) / sum(called),
                                         recall = sum(called & truth) / sum(truth)))
  }
  fit <- Mclust(X, initialization = list(noise = guess), verbose = FALSE)
  called <- fit$classification == 0
  selection <- rbind(selection, data.frame(data = name, model = fit$modelName, G = fit$G, loglik = fit$loglik,
                                            df = fit$df, bic = fit$bic, precision = sum(called & truth) / sum(called),
                                            recall = sum(called & truth) / sum(truth)))
}
write.csv(starts, "start.csv", row.names = FALSE)
write.csv(results, "mclust_noise.csv", row.names = FALSE)
write.csv(selection, "mclust_noise_selection.csv", row.names = FALSE)

<?php
/**
 * Relance - 1.1.0: the reviews shown on the shop (local copy, product-page hooks, settings).
 *
 * @license MIT
 */
if (!defined('_PS_VERSION_')) {
    exit;
}

/**
 * @param Relance $module
 *
 * @return bool
 */
function upgrade_module_1_1_0($module)
{
    return RelanceReviewsStore::executeAll(RelanceReviewsStore::installSql(_DB_PREFIX_, _MYSQL_ENGINE_))
        && $module->registerHook(Relance::REVIEW_HOOKS)
        && $module->installReviewDefaults();
}

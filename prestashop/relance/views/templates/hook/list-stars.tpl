{**
 * Relance - stars in product lists (displayProductListReviews).
 *
 * @license MIT
 *}
{if $relance_reviews.summary.count > 0}
<div class="relance-reviews-summary relance-reviews-list-stars">
  <span class="relance-stars" role="img" aria-label="{$relance_reviews.summary.mean_text|escape:'html':'UTF-8'}/5"><span class="relance-stars-filled" style="width: {$relance_reviews.summary.percent|intval}%"></span></span>
  <span class="relance-reviews-count">({$relance_reviews.summary.count|intval})</span>
</div>
{/if}

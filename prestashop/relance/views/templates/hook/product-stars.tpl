{**
 * Relance - stars and count under the product's name (displayProductAdditionalInfo).
 *
 * @license MIT
 *}
{if $relance_reviews.summary.count > 0}
<div class="relance-reviews-summary">
  <span class="relance-stars" role="img" aria-label="{$relance_reviews.summary.mean_text|escape:'html':'UTF-8'}/5"><span class="relance-stars-filled" style="width: {$relance_reviews.summary.percent|intval}%"></span></span>
  <span class="relance-reviews-mean">{$relance_reviews.summary.mean_text|escape:'html':'UTF-8'}/5</span>
  {if $relance_reviews.list_url}<a href="{$relance_reviews.list_url|escape:'html':'UTF-8'}" class="relance-reviews-count">{else}<span class="relance-reviews-count">{/if}{if $relance_reviews.summary.count == 1}{l s='1 review' mod='relance'}{else}{$relance_reviews.summary.count|intval} {l s='reviews' mod='relance'}{/if}{if $relance_reviews.list_url}</a>{else}</span>{/if}
</div>
{if $relance_reviews.json_ld}<script type="application/ld+json">{$relance_reviews.json_ld nofilter}</script>{/if}
{/if}

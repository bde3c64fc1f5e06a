/** The gallery's filters: free text over name, description, use case, tags and the jobs it creates
 * (names, tables); exact industry, category and complexity. */
export interface TemplateLike {
  name: string;
  description: string;
  category: string;
  industryVertical?: string | null;
  useCase?: string | null;
  tags: string[];
  complexity?: string;
  creates?: { name: string; writes?: string | null }[];
}

export const COMPLEXITIES = ["simple", "moderate", "advanced"] as const;

export function filterTemplates<T extends TemplateLike>(
  templates: T[],
  filters: { q?: string; industry?: string; category?: string; complexity?: string },
): T[] {
  const words = (filters.q ?? "").toLowerCase().split(/\s+/).filter(Boolean);
  return templates.filter((template) => {
    if (filters.industry && template.industryVertical !== filters.industry) return false;
    if (filters.category && template.category !== filters.category) return false;
    if (filters.complexity && template.complexity !== filters.complexity) return false;
    const text = [
      template.name,
      template.description,
      template.useCase ?? "",
      ...template.tags,
      ...(template.creates ?? []).flatMap((job) => [job.name, job.writes ?? ""]),
    ]
      .join(" ")
      .toLowerCase();
    return words.every((word) => text.includes(word));
  });
}

export interface TemplateParameters {
  connections: { key: string; description?: string; types?: string[]; defaultType?: string }[];
  files: { key: string; description?: string }[];
}

/** The template's `parameters` as the API gives them (an open object), read defensively. */
export function readParameters(raw: unknown): TemplateParameters {
  const value = (raw ?? {}) as Partial<TemplateParameters>;
  return {
    connections: Array.isArray(value.connections) ? value.connections : [],
    files: Array.isArray(value.files) ? value.files : [],
  };
}

variable "name" {
  description = "Key alias (without alias/)."
  type        = string
}
